package testenv

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"os"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Env describes a private bucket on the S3-compatible test server. Buckets
// must be addressed path-style (http://host:port/bucket/key).
type S3Env struct {
	// Endpoint is the server's base URL, such as http://127.0.0.1:7070.
	Endpoint string
	// AccessKey is the access key id to sign requests with.
	AccessKey string
	// SecretKey is the secret access key to sign requests with.
	SecretKey string
	// Region is the region to sign requests for, such as us-east-1.
	Region string
	// Bucket is the name of the fresh bucket created for this test.
	Bucket string

	client *minio.Client
}

// S3 creates a fresh, empty bucket (named kt- followed by random hex digits)
// on the S3-compatible server at EnvS3Endpoint and describes it. When the test
// and its subtests end, the bucket's objects and unfinished multipart uploads
// are removed and then the bucket itself.
//
// Without EnvS3Endpoint, EnvS3AccessKey or EnvS3SecretKey the test is skipped
// (or fails, see package doc). EnvS3Region defaults to us-east-1.
func S3(t testing.TB) S3Env {
	t.Helper()
	v := lookup(t, EnvS3Endpoint, EnvS3AccessKey, EnvS3SecretKey)
	env := S3Env{Endpoint: v[0], AccessKey: v[1], SecretKey: v[2], Region: "us-east-1"}
	if r := os.Getenv(EnvS3Region); r != "" {
		env.Region = r
	}
	u, err := url.Parse(env.Endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		t.Fatalf("testenv: %s must look like http://host:port, got %q (err %v)", EnvS3Endpoint, env.Endpoint, err)
	}
	env.client, err = minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(env.AccessKey, env.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       env.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatalf("testenv: S3 client for %s: %v", env.Endpoint, err)
	}
	env.Bucket = uniqueName(t, "kt-")

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := env.client.MakeBucket(ctx, env.Bucket, minio.MakeBucketOptions{Region: env.Region}); err != nil {
		t.Fatalf("testenv: create bucket %s on %s (is `bash scripts/services.sh start` done?): %v", env.Bucket, env.Endpoint, err)
	}
	t.Cleanup(func() { env.removeBucket(t) })
	return env
}

// removeBucket empties the bucket and removes it.
func (e S3Env) removeBucket(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for up := range e.client.ListIncompleteUploads(ctx, e.Bucket, "", true) {
		if up.Err != nil {
			t.Errorf("testenv: list multipart uploads of bucket %s: %v", e.Bucket, up.Err)
			break
		}
		if err := e.client.RemoveIncompleteUpload(ctx, e.Bucket, up.Key); err != nil {
			t.Errorf("testenv: abort multipart upload %s/%s: %v", e.Bucket, up.Key, err)
		}
	}
	objs := e.client.ListObjects(ctx, e.Bucket, minio.ListObjectsOptions{Recursive: true})
	for rerr := range e.client.RemoveObjects(ctx, e.Bucket, objs, minio.RemoveObjectsOptions{}) {
		t.Errorf("testenv: remove object %s/%s: %v", e.Bucket, rerr.ObjectName, rerr.Err)
	}
	if err := e.client.RemoveBucket(ctx, e.Bucket); err != nil {
		t.Errorf("testenv: remove bucket %s: %v", e.Bucket, err)
	}
}

// Put stores data as the object key in the test's bucket, failing the test on
// error.
func (e S3Env) Put(t testing.TB, key string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := e.client.PutObject(ctx, e.Bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("testenv: put s3://%s/%s: %v", e.Bucket, key, err)
	}
}

// Get returns the content of the object key in the test's bucket, failing the
// test on error (including when the object does not exist).
func (e S3Env) Get(t testing.TB, key string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	obj, err := e.client.GetObject(ctx, e.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("testenv: get s3://%s/%s: %v", e.Bucket, key, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("testenv: get s3://%s/%s: %v", e.Bucket, key, err)
	}
	return data
}

// Keys lists the keys of the objects in the test's bucket (all of them,
// sorted), failing the test on error: a test proves with it that nothing
// was left behind.
func (e S3Env) Keys(t testing.TB) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var keys []string
	for o := range e.client.ListObjects(ctx, e.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("testenv: list s3://%s: %v", e.Bucket, o.Err)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

// URI returns "s3://<bucket>/<key>" for an object in the test's bucket.
func (e S3Env) URI(key string) string {
	return "s3://" + e.Bucket + "/" + key
}
