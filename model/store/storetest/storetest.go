// Package storetest provides what tests of model stores need: an
// in-process S3 server (gofakes3 with its memory backend) and small
// trained models, written without ONNX Runtime.
package storetest

import (
	"fmt"
	"iter"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/model"
)

// Credentials the S3 server is given in tests (gofakes3 accepts any).
const (
	AccessKeyID     = "aether-test"
	SecretAccessKey = "aether-test-secret"
)

// S3 is an in-process S3 server for one test.
type S3 struct {
	// Endpoint is the server's URL (http://127.0.0.1:port).
	Endpoint string
	// Backend holds the objects: tests change them behind the API with it.
	Backend *s3mem.Backend
}

// StartS3 starts an S3 server with the given buckets, closed when the test
// ends. It also makes the AWS SDK hermetic for the test: no shared config
// files, no instance metadata service.
func StartS3(t testing.TB, buckets ...string) *S3 {
	t.Helper()
	if s, ok := t.(interface{ Setenv(k, v string) }); ok {
		s.Setenv("AWS_EC2_METADATA_DISABLED", "true")
		s.Setenv("AWS_CONFIG_FILE", "/dev/null")
		s.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	}
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return &S3{Endpoint: srv.URL, Backend: backend}
}

// SetEnv points the AWS SDK's standard environment variables at the
// server for the rest of the test: AWS_ENDPOINT_URL, credentials, region.
func (s *S3) SetEnv(t interface{ Setenv(k, v string) }) {
	t.Setenv("AWS_ENDPOINT_URL", s.Endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", SecretAccessKey)
	t.Setenv("AWS_REGION", "us-east-1")
}

// Model trains a small model (about 20 items) named version on a
// synthetic history that seed varies, saves it into dir and returns its
// metadata. Different seeds give models with different SHA-256s.
func Model(t testing.TB, dir, version string, seed int) model.Metadata {
	t.Helper()
	m, err := model.Train(history(seed), model.Version(version),
		model.CreatedAt(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	return m.Metadata()
}

func history(seed int) iter.Seq[event.Event] {
	t0 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	return func(yield func(event.Event) bool) {
		for i := range 400 {
			e := event.Event{
				UserID:    fmt.Sprintf("u%d", i%10),
				ProductID: fmt.Sprintf("prod_%d", (i*(seed+3)+i/10)%(17+seed)),
				EventType: event.Click,
				Timestamp: t0.Add(time.Duration(i) * time.Second),
			}
			if !yield(e) {
				return
			}
		}
	}
}
