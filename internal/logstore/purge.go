package logstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// DeleteTenant removes every log file of tenant (the purge of a tenant's data) and returns
// how many files went. A tenant without logs is not an error, so a second purge is harmless.
func (d Dir) DeleteTenant(ctx context.Context, tenant string) (int64, error) {
	if !validName(tenant) {
		return 0, ErrBadName
	}
	if d.Root == "" {
		return 0, nil
	}
	root, err := d.openRoot()
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer root.Close()
	var n int64
	err = fs.WalkDir(root.FS(), tenant, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() {
			n++
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list tenant logs: %w", pathless(err))
	}
	// os.Root.RemoveAll does not follow symlinks out of the root.
	if err := root.RemoveAll(tenant); err != nil {
		return 0, fmt.Errorf("delete tenant logs: %w", pathless(err))
	}
	return n, nil
}

// DeleteTenant removes every object under the tenant's prefix and returns how many went.
func (b *Bucket) DeleteTenant(ctx context.Context, tenant string) (int64, error) {
	if !validName(tenant) {
		return 0, ErrBadName
	}
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.bucket),
		Prefix: aws.String(b.prefix + tenant + "/"),
	})
	var n int64
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, fmt.Errorf("list tenant logs: %w", err)
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]types.ObjectIdentifier, 0, len(page.Contents))
		for _, o := range page.Contents {
			ids = append(ids, types.ObjectIdentifier{Key: o.Key})
		}
		out, err := b.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(b.bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return n, fmt.Errorf("delete tenant logs: %w", err)
		}
		if len(out.Errors) > 0 {
			return n, fmt.Errorf("delete tenant logs: %d objects refused", len(out.Errors))
		}
		n += int64(len(ids))
	}
	return n, nil
}
