package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/aetherai/aether/model"
)

// defaultRegion is used when neither the environment nor an option names
// one: S3-compatible servers accept any region, and AWS routes a bucket
// of another region with a redirect error that names it.
const defaultRegion = "us-east-1"

// envRequestChecksum is the SDK's setting of when uploads carry a CRC
// checksum; set, it wins over this package's default for custom endpoints.
const envRequestChecksum = "AWS_REQUEST_CHECKSUM_CALCULATION"

type s3Backend struct{ client *s3.Client }

func newS3(ctx context.Context, o options) (*s3Backend, error) {
	if o.endpoint != "" {
		u, err := url.Parse(o.endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("store: S3 endpoint %q is not an http:// or https:// URL", o.endpoint)
		}
	}
	var load []func(*awsconfig.LoadOptions) error
	if o.region != "" {
		load = append(load, awsconfig.WithRegion(o.region))
	}
	if o.staticCredentials {
		load = append(load, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(o.accessKey, o.secret, "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("store: AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = defaultRegion
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.endpoint != "" {
			so.BaseEndpoint = aws.String(o.endpoint)
		}
		if so.BaseEndpoint == nil {
			return // AWS itself: the SDK's defaults
		}
		so.UsePathStyle = true
		if os.Getenv(envRequestChecksum) == "" {
			so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		}
	})
	return &s3Backend{client: client}, nil
}

func (b *s3Backend) get(ctx context.Context, u URI, w io.Writer) error {
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(u.Bucket), Key: aws.String(u.Path)})
	if err != nil {
		return s3Error(u, "get", err)
	}
	defer out.Body.Close()
	n, err := io.Copy(w, out.Body)
	if err != nil {
		return fmt.Errorf("store: get %s: %w", u, err)
	}
	if out.ContentLength != nil && n != *out.ContentLength {
		return fmt.Errorf("store: get %s: %d bytes read, %d announced", u, n, *out.ContentLength)
	}
	return nil
}

func (b *s3Backend) put(ctx context.Context, u URI, r io.ReadSeeker, size int64) error {
	_, err := b.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(u.Bucket),
		Key:           aws.String(u.Path),
		Body:          r,
		ContentLength: aws.Int64(size),
		ContentType:   aws.String(contentType(u.Path)),
	})
	if err != nil {
		return s3Error(u, "put", err)
	}
	return nil
}

func (b *s3Backend) versions(ctx context.Context, u URI) ([]string, error) {
	prefix := u.Path
	if prefix != "" {
		prefix += "/"
	}
	seen := map[string]bool{}
	var vs []string
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{Bucket: aws.String(u.Bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s3Error(u, "list", err)
		}
		for _, obj := range page.Contents {
			rest := strings.TrimPrefix(aws.ToString(obj.Key), prefix)
			v, file, ok := strings.Cut(rest, "/")
			if ok && v != "" && file == model.FileMetadata && !seen[v] {
				seen[v] = true
				vs = append(vs, v)
			}
		}
	}
	return vs, nil
}

// s3Error turns a 404 (no such key or bucket) into a *NotFoundError.
func s3Error(u URI, op string, err error) error {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == 404 {
		what := "no such object"
		if api, ok := errors.AsType[smithy.APIError](err); ok && api.ErrorCode() == "NoSuchBucket" {
			what = "no such bucket"
		}
		return &NotFoundError{URI: u.String(), What: what, Err: err}
	}
	return fmt.Errorf("store: %s %s: %w", op, u, err)
}

func contentType(key string) string {
	if strings.HasSuffix(key, ".json") {
		return "application/json"
	}
	return "application/octet-stream"
}
