package logstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Bucket is a log store in S3 or an S3-compatible object store: object keys are
// <prefix>/<tenant>/<stream>/<YYYY-MM-DD>.log[.gz]. A binary-search probe is one ranged GET
// of 64 KiB, and reading a file is one GET from the window's start that is abandoned once
// the lines pass the window's end. It is safe for concurrent use, as its client is.
type Bucket struct {
	client *s3.Client
	bucket string
	prefix string // "" or ending in "/"
}

// BucketOption adjusts how NewBucket builds its client.
type BucketOption func(*bucketOptions)

type bucketOptions struct {
	endpoint  string
	region    string
	pathStyle bool
}

// WithEndpoint sends requests to an S3-compatible server (MinIO, Ceph, R2…) instead of AWS.
func WithEndpoint(url string) BucketOption {
	return func(o *bucketOptions) { o.endpoint = url }
}

// WithPathStyle puts the bucket in the URL path rather than the host name, which most
// S3-compatible servers need.
func WithPathStyle() BucketOption {
	return func(o *bucketOptions) { o.pathStyle = true }
}

// WithRegion overrides the region of the default configuration chain.
func WithRegion(region string) BucketOption {
	return func(o *bucketOptions) { o.region = region }
}

// NewBucket returns the store in bucket under prefix, with credentials and region from the
// standard AWS configuration chain (environment, shared files, instance role).
func NewBucket(ctx context.Context, bucket, prefix string, opts ...BucketOption) (*Bucket, error) {
	var o bucketOptions
	for _, opt := range opts {
		opt(&o)
	}
	var load []func(*config.LoadOptions) error
	if o.region != "" {
		load = append(load, config.WithRegion(o.region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("load aws config: %w", err)
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.endpoint != "" {
			so.BaseEndpoint = aws.String(o.endpoint)
		}
		so.UsePathStyle = o.pathStyle
	})
	return NewBucketClient(client, bucket, prefix), nil
}

// NewBucketClient returns the store in bucket under prefix, read through client.
func NewBucketClient(client *s3.Client, bucket, prefix string) *Bucket {
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &Bucket{client: client, bucket: bucket, prefix: prefix}
}

// Streams lists the tenant's streams (the common prefixes under its key), sorted.
func (b *Bucket) Streams(ctx context.Context, tenant string) ([]string, error) {
	if !validName(tenant) {
		return nil, ErrBadName
	}
	base := b.prefix + tenant + "/"
	var out []string
	err := b.list(ctx, base, func(page *s3.ListObjectsV2Output) {
		for _, cp := range page.CommonPrefixes {
			name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), base), "/")
			if validName(name) {
				out = append(out, name)
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	return out, nil // S3 lists keys in byte order, which is sorted
}

// Files lists the stream's log objects.
func (b *Bucket) Files(ctx context.Context, tenant, stream string) ([]File, error) {
	if !validName(tenant) || !validName(stream) {
		return nil, ErrBadName
	}
	base := b.prefix + tenant + "/" + stream + "/"
	var out []File
	err := b.list(ctx, base, func(page *s3.ListObjectsV2Output) {
		for _, obj := range page.Contents {
			f, ok := parseFileName(strings.TrimPrefix(aws.ToString(obj.Key), base))
			if !ok {
				continue
			}
			f.Size = aws.ToInt64(obj.Size)
			out = append(out, f)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	if len(out) == 0 {
		// An object store has no empty folders: a stream without objects does not exist.
		return nil, ErrNotFound
	}
	return out, nil
}

// list walks every page of one level under base.
func (b *Bucket) list(ctx context.Context, base string, each func(*s3.ListObjectsV2Output)) error {
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket:    aws.String(b.bucket),
		Prefix:    aws.String(base),
		Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		each(page)
	}
	return nil
}

// ReadRange GETs the byte range [off, off+n) of the object, or from off to its end.
func (b *Bucket) ReadRange(ctx context.Context, tenant, stream, name string, off, n int64) (io.ReadCloser, error) {
	if !validName(tenant) || !validName(stream) || !validName(name) {
		return nil, ErrBadName
	}
	if n == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	in := &s3.GetObjectInput{
		Bucket: aws.String(b.bucket),
		Key:    aws.String(b.prefix + path.Join(tenant, stream, name)),
	}
	switch {
	case n > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	case off > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	}
	out, err := b.client.GetObject(ctx, in, func(o *s3.Options) {
		// A stored checksum covers the whole object and cannot check a range of it.
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) {
			return nil, ErrNotFound
		}
		if isInvalidRange(err) {
			return io.NopCloser(strings.NewReader("")), nil // off is at or past the end
		}
		return nil, fmt.Errorf("get log object: %w", err)
	}
	return out.Body, nil
}

// isInvalidRange reports the 416 S3 answers for a range that starts past the object.
func isInvalidRange(err error) bool {
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == 416
}
