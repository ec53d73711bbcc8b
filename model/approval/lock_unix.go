//go:build unix

package approval

import (
	"os"
	"syscall"
)

// lockDir takes an exclusive advisory lock (flock) on the directory dir,
// serialising manifest updates of processes on this host.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
