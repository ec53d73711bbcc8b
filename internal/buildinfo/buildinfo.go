// Package buildinfo exports which build of Aether a process runs as the
// aether_build_info gauge, so a dashboard shows the version next to every
// other panel and an alert or incident can be tied to a deploy.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricName is the gauge Register exports: always 1, the build in its
// labels (version, revision, goversion).
const MetricName = "aether_build_info"

// Unknown is the value of a label the build did not record.
const Unknown = "unknown"

// version and revision may be set at link time, for builds whose VCS
// stamp is off (go build -buildvcs=false, builds outside a checkout):
//
//	go build -ldflags "-X github.com/aetherai/aether/internal/buildinfo.version=v1.2.3 \
//	  -X github.com/aetherai/aether/internal/buildinfo.revision=$(git rev-parse HEAD)"
//
// They are written only by the linker, never at run time.
var version, revision string

// Info is what a binary knows about its own build.
type Info struct {
	Version   string // module version (v1.2.3, a pseudo-version, or "(devel)"), else Unknown
	Revision  string // VCS commit, with a "-dirty" suffix for a modified tree, else Unknown
	GoVersion string // the Go toolchain that built it
}

// Read returns the running binary's build: link-time values first, then
// what the Go toolchain recorded (runtime/debug.ReadBuildInfo).
func Read() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(bi, version, revision)
}

func fromBuildInfo(bi *debug.BuildInfo, ldVersion, ldRevision string) Info {
	info := Info{Version: ldVersion, Revision: ldRevision, GoVersion: runtime.Version()}
	if bi != nil {
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		if info.Version == "" && bi.Main.Version != "" {
			info.Version = bi.Main.Version
		}
		if info.Revision == "" {
			var rev string
			dirty := false
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					dirty = s.Value == "true"
				}
			}
			if rev != "" && dirty {
				rev += "-dirty"
			}
			info.Revision = rev
		}
	}
	if info.Version == "" {
		info.Version = Unknown
	}
	if info.Revision == "" {
		info.Revision = Unknown
	}
	return info
}

// Collector returns the aether_build_info gauge for info.
func Collector(info Info) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: MetricName,
		Help: "Build of the running Aether binary: always 1, with its version, VCS revision and Go version as labels.",
		ConstLabels: prometheus.Labels{
			"version":   info.Version,
			"revision":  info.Revision,
			"goversion": info.GoVersion,
		},
	})
	g.Set(1)
	return g
}

// Register registers the running binary's aether_build_info with reg.
func Register(reg prometheus.Registerer) error {
	if reg == nil {
		return fmt.Errorf("buildinfo: nil registerer")
	}
	if err := reg.Register(Collector(Read())); err != nil {
		return fmt.Errorf("buildinfo: register %s: %w", MetricName, err)
	}
	return nil
}
