package keyring

import "errors"

// Retryable reports whether err, from Seal or Open, may pass on a retry:
// Redis unreachable or slow. A value that is not sealed, fails
// authentication, or whose key is destroyed never opens, however often it
// is tried.
func (k *Keyring) Retryable(err error) bool {
	return err != nil && !errors.Is(err, ErrNotSealed) && !errors.Is(err, ErrTampered) &&
		!errors.Is(err, ErrDestroyed) && !errors.Is(err, errNoSubject)
}

// Shredded reports whether err says the subject's data key is gone,
// deleted by a deletion request or expired after its TTL: what it sealed
// is unreadable for good, as if deleted.
func (k *Keyring) Shredded(err error) bool { return errors.Is(err, ErrDestroyed) }

// NotSealed reports whether err says the value was never sealed: it has
// not the sealed format (written in clear, say before sealing was on).
func (k *Keyring) NotSealed(err error) bool { return errors.Is(err, ErrNotSealed) }
