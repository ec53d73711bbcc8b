package processors

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// retry waits between attempts only: a call that keeps failing waits
// 50+100+200 ms, not once more after its last attempt.
func TestRetryWaitsBetweenAttemptsOnly(t *testing.T) {
	transient, permanent := errors.New("transient"), errors.New("permanent")
	ms := time.Millisecond
	for _, tc := range []struct {
		name     string
		errs     []error // op's result per attempt; nil after the end
		wantOps  int
		wantWait []time.Duration
		wantErr  error
	}{
		{"keeps failing", []error{transient, transient, transient, transient, transient}, 4, []time.Duration{50 * ms, 100 * ms, 200 * ms}, transient},
		{"passes on the third attempt", []error{transient, transient}, 3, []time.Duration{50 * ms, 100 * ms}, nil},
		{"fails for good", []error{permanent}, 1, nil, permanent},
		{"passes at once", nil, 1, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops := 0
			var waits []time.Duration
			err := retry(context.Background(), 3,
				func(err error) bool { return err == transient },
				func(context.Context) error {
					ops++
					if ops <= len(tc.errs) {
						return tc.errs[ops-1]
					}
					return nil
				},
				func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil })
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if ops != tc.wantOps {
				t.Errorf("%d attempts, want %d", ops, tc.wantOps)
			}
			if !slices.Equal(waits, tc.wantWait) {
				t.Errorf("waits %v, want %v", waits, tc.wantWait)
			}
		})
	}
}

// A wait cut short (the context ended) ends the retries with both errors.
func TestRetryStopsWhenTheWaitFails(t *testing.T) {
	transient := errors.New("transient")
	ops := 0
	err := retry(context.Background(), 3, func(error) bool { return true },
		func(context.Context) error { ops++; return transient },
		func(context.Context, time.Duration) error { return context.Canceled })
	if ops != 1 || !errors.Is(err, transient) || !errors.Is(err, context.Canceled) {
		t.Errorf("%d attempts, err %v", ops, err)
	}
}
