package store

import (
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"
)

// URI schemes.
const (
	SchemeFile = "file"
	SchemeS3   = "s3"
)

// URI is a parsed model location.
type URI struct {
	// Scheme is SchemeFile or SchemeS3.
	Scheme string
	// Bucket is the S3 bucket (s3 only).
	Bucket string
	// Path is, for file, a local path (absolute for file:// URIs, as given
	// for plain paths); for s3, the key prefix without leading or trailing
	// slashes ("" for the bucket's root).
	Path string
}

// ParseURI parses file:///abs/path, a plain local path, or
// s3://bucket/prefix. A file URI must be absolute and name no host other
// than localhost; query strings and fragments are refused, so that a
// typo cannot silently name another location.
func ParseURI(s string) (URI, error) {
	if s == "" {
		return URI{}, fmt.Errorf("store: empty model URI")
	}
	if !strings.Contains(s, "://") {
		return URI{Scheme: SchemeFile, Path: filepath.Clean(s)}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return URI{}, fmt.Errorf("store: model URI %q: %w", s, err)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return URI{}, fmt.Errorf("store: model URI %q: query, fragment and user info are not supported", s)
	}
	switch u.Scheme {
	case SchemeFile:
		if u.Host != "" && u.Host != "localhost" {
			return URI{}, fmt.Errorf("store: model URI %q: file URIs name a local path (file:///abs/path), not host %q", s, u.Host)
		}
		if !path.IsAbs(u.Path) {
			return URI{}, fmt.Errorf("store: model URI %q: the path must be absolute (file:///abs/path)", s)
		}
		return URI{Scheme: SchemeFile, Path: filepath.Clean(filepath.FromSlash(u.Path))}, nil
	case SchemeS3:
		if u.Host == "" {
			return URI{}, fmt.Errorf("store: model URI %q: no bucket (s3://bucket/prefix)", s)
		}
		p := strings.Trim(u.Path, "/")
		if strings.Contains(p, "//") {
			return URI{}, fmt.Errorf("store: model URI %q: empty path segment", s)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "." || seg == ".." {
				return URI{}, fmt.Errorf("store: model URI %q: %q segments are not allowed", s, seg)
			}
		}
		return URI{Scheme: SchemeS3, Bucket: u.Host, Path: p}, nil
	default:
		return URI{}, fmt.Errorf("store: model URI %q: unsupported scheme %q (file:// or s3://)", s, u.Scheme)
	}
}

// String returns the URI in its canonical form: s3://bucket/prefix,
// file:///abs/path, or a relative path as given.
func (u URI) String() string {
	switch u.Scheme {
	case SchemeS3:
		if u.Path == "" {
			return "s3://" + u.Bucket
		}
		return "s3://" + u.Bucket + "/" + u.Path
	default:
		if filepath.IsAbs(u.Path) {
			return "file://" + filepath.ToSlash(u.Path)
		}
		return u.Path
	}
}

// Join returns the location of name below u.
func (u URI) Join(name string) URI {
	switch u.Scheme {
	case SchemeS3:
		if u.Path == "" {
			u.Path = name
		} else {
			u.Path += "/" + name
		}
	default:
		u.Path = filepath.Join(u.Path, name)
	}
	return u
}
