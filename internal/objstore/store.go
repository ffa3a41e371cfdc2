package objstore

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// partSize is the multipart part size for uploads. minio-go holds one part
// in memory; left to itself with an unknown size it picks about 537 MiB.
// 16 MiB parts cap an upload of unknown size at 160 GiB (10,000 parts).
const partSize = 16 << 20

// storeHeaderTimeout bounds the wait for each S3 response: generous, since
// completing a large multipart upload can take the server a while.
const storeHeaderTimeout = 5 * time.Minute

// Store keeps uploaded files in one S3 bucket, under a key prefix, so that
// uploads outlive the process and any instance can read them as s3:// URIs.
type Store struct {
	cfg    S3Config
	client *minio.Client
	bucket string
	prefix string
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	// URI is the object's s3://bucket/key, as a source would name it.
	URI string
	// Size is the object's length in bytes.
	Size int64
	// Modified is when the object was last written.
	Modified time.Time
	// ETag is the server's version tag, for telling rewrites apart.
	ETag string
}

// NewStore returns a Store for bucket, with keys under prefix ("uploads/";
// may be empty). It does no I/O: a missing bucket shows on first use.
// Errors: EINVALID for a bad configuration or bucket name.
func NewStore(cfg S3Config, bucket, prefix string) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := s3utils.CheckValidBucketNameStrict(bucket); err != nil {
		return nil, kalla.Errorf(kalla.EINVALID, "S3 bucket name %q is not valid", bucket)
	}
	client, err := newS3Client(cfg, newTransport(DefaultConnectTimeout, storeHeaderTimeout, nil))
	if err != nil {
		return nil, err
	}
	return &Store{cfg: cfg, client: client, bucket: bucket, prefix: prefix}, nil
}

func (s *Store) object(key string) (s3Object, error) {
	o := s3Object{bucket: s.bucket, key: s.prefix + key}
	if strings.TrimSpace(key) == "" || s3utils.CheckValidObjectName(o.key) != nil {
		return o, kalla.Errorf(kalla.EINVALID, "object key %q is not valid", key)
	}
	return o, nil
}

// Put streams r to the object key (under the store's prefix) and returns
// its s3:// URI. size is r's length, or -1 when unknown; either way r is
// sent in parts and never held whole in memory. A failed upload leaves no
// partial object. Errors: ENOTFOUND when the bucket does not exist,
// EUNAVAILABLE when the server cannot be reached or refuses the
// credentials, EINVALID for a bad key.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (uri string, err error) {
	o, err := s.object(key)
	if err != nil {
		return "", err
	}
	if size < 0 {
		size = -1
	}
	_, err = s.client.PutObject(ctx, o.bucket, o.key, r, size, minio.PutObjectOptions{
		PartSize:    partSize,
		ContentType: "application/octet-stream",
	})
	if err != nil {
		return "", s3Error(err, "upload", o, s.cfg)
	}
	return o.String(), nil
}

// Remove deletes the object key (under the store's prefix), so that an
// upload the server refuses after storing it leaves nothing behind and a
// run can clear an output location whatever a previous run left there.
// Removing an object that does not exist is not an error (S3 answers a
// delete of a missing key with success). Errors: ENOTFOUND when the bucket
// does not exist, EUNAVAILABLE when the server cannot be reached or
// refuses the credentials, EINVALID for a bad key.
func (s *Store) Remove(ctx context.Context, key string) error {
	o, err := s.object(key)
	if err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, o.bucket, o.key, minio.RemoveObjectOptions{}); err != nil {
		return s3Error(err, "remove", o, s.cfg)
	}
	return nil
}

// Stat describes the object key without reading it, so callers can check
// an upload landed or learn a size before a fetch. Errors: ENOTFOUND when
// the object or bucket does not exist, EUNAVAILABLE when the server cannot
// be reached or refuses the credentials.
func (s *Store) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	o, err := s.object(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	info, err := s.client.StatObject(ctx, o.bucket, o.key, minio.StatObjectOptions{})
	if err != nil {
		if minio.ToErrorResponse(err).StatusCode == http.StatusNotFound {
			// A HEAD answer has no body, so minio-go guesses NoSuchKey from
			// any 404, and versitygw answers an unknown access key with 404.
			// A GET's error body tells the two apart.
			body, _, _, gerr := minio.Core{Client: s.client}.GetObject(ctx, o.bucket, o.key, minio.GetObjectOptions{})
			if gerr == nil {
				body.Close()
			} else {
				err = gerr
			}
		}
		return ObjectInfo{}, s3Error(err, "stat", o, s.cfg)
	}
	return ObjectInfo{URI: o.String(), Size: info.Size, Modified: info.LastModified, ETag: info.ETag}, nil
}

// List describes the objects whose keys start with prefix (under the
// store's prefix), in key order, without reading them: the Spark engine
// checks what its executors wrote under an output prefix with it. Errors:
// ENOTFOUND when the bucket does not exist, EUNAVAILABLE when the server
// cannot be reached or refuses the credentials.
func (s *Store) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	o := s3Object{bucket: s.bucket, key: s.prefix + prefix}
	var out []ObjectInfo
	for info := range s.client.ListObjects(ctx, o.bucket, minio.ListObjectsOptions{Prefix: o.key, Recursive: true}) {
		if info.Err != nil {
			return nil, s3Error(info.Err, "list", o, s.cfg)
		}
		out = append(out, ObjectInfo{URI: "s3://" + s.bucket + "/" + info.Key, Size: info.Size, Modified: info.LastModified, ETag: info.ETag})
	}
	return out, nil
}

// RemoveAll deletes every object whose key starts with prefix (under the
// store's prefix), as a failed run's outputs are removed. An empty prefix
// is refused: it would empty the store. Errors as List and Remove.
func (s *Store) RemoveAll(ctx context.Context, prefix string) error {
	if strings.TrimSpace(prefix) == "" {
		return kalla.Errorf(kalla.EINVALID, "refusing to remove every object of the store")
	}
	objs, err := s.List(ctx, prefix)
	if err != nil {
		return err
	}
	for _, info := range objs {
		key := strings.TrimPrefix(strings.TrimPrefix(info.URI, "s3://"+s.bucket+"/"), s.prefix)
		if err := s.Remove(ctx, key); err != nil {
			return err
		}
	}
	return nil
}
