// Package objstore moves bytes between Kalla and object stores: it fetches
// s3:// objects and allow-listed https:// files into local temporary files
// (the file connector reads only local files, and DuckDB here has no httpfs),
// reads parts of them by ranged GETs (OpenRange: a Parquet footer, the start
// of a compressed file), and it stores uploads in an S3 bucket. Objects are
// always streamed to disk or read by bounded ranges, never held whole in
// memory, since sources can be many gigabytes.
//
// Errors are *kalla.Error values: ENOTFOUND for a missing object or bucket,
// EUNAVAILABLE when the server cannot be reached or refuses the credentials,
// EINVALID for a URI or a size that configuration does not allow. No error
// carries a secret key, URL credentials or a URL's query string.
package objstore

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// S3Config says how to reach an S3-compatible server. The zero value means
// AWS S3 with anonymous access, which is enough for public buckets.
type S3Config struct {
	// Endpoint is the server: "http://host:port" or "https://host[:port]".
	// A bare "host[:port]" means https. Empty means AWS S3.
	Endpoint string
	// Region is the region requests are signed for. Empty lets the client
	// ask the server for the bucket's region, which costs one request.
	Region string
	// AccessKey is the access key id; empty (with SecretKey) means anonymous.
	AccessKey string
	// SecretKey is the secret access key. It never appears in errors, logs
	// or String output.
	SecretKey string
	// PathStyle addresses buckets as host/bucket/key instead of
	// bucket.host/key, which most self-hosted servers (MinIO, versitygw,
	// Ceph) need. When false the client picks per endpoint.
	PathStyle bool
}

// S3ConfigFromEnv reads S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY, S3_SECRET_KEY
// and S3_PATH_STYLE, the variables most S3 tools already use, so a
// deployment configures Kalla like its other tools. S3_PATH_STYLE defaults to
// true when S3_ENDPOINT is set, since a custom endpoint is almost always a
// self-hosted server. Errors: EINVALID for an unparseable S3_PATH_STYLE or
// endpoint.
func S3ConfigFromEnv() (S3Config, error) {
	c := S3Config{
		Endpoint:  strings.TrimSpace(os.Getenv("S3_ENDPOINT")),
		Region:    strings.TrimSpace(os.Getenv("S3_REGION")),
		AccessKey: os.Getenv("S3_ACCESS_KEY"),
		SecretKey: os.Getenv("S3_SECRET_KEY"),
		PathStyle: os.Getenv("S3_ENDPOINT") != "",
	}
	if v := strings.TrimSpace(os.Getenv("S3_PATH_STYLE")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return S3Config{}, kalla.Errorf(kalla.EINVALID, "S3_PATH_STYLE=%q is not a boolean (use true or false)", v)
		}
		c.PathStyle = b
	}
	if err := c.Validate(); err != nil {
		return S3Config{}, err
	}
	return c, nil
}

// Validate checks the configuration without contacting the server, so a
// typo in the endpoint is reported at startup rather than on first use.
// Errors: EINVALID.
func (c S3Config) Validate() error {
	_, _, err := c.endpoint()
	if err == nil && (c.AccessKey == "") != (c.SecretKey == "") {
		err = kalla.Errorf(kalla.EINVALID, "S3 configuration: give both an access key and a secret key, or neither for anonymous access")
	}
	return err
}

// String describes the configuration with the secret key hidden, so that
// printing a config by accident does not leak it.
func (c S3Config) String() string {
	secret := ""
	if c.SecretKey != "" {
		secret = "xxxxx"
	}
	return fmt.Sprintf("{Endpoint:%s Region:%s AccessKey:%s SecretKey:%s PathStyle:%t}",
		kalla.Excerpt(kalla.Redact(c.Endpoint)), c.Region, c.AccessKey, secret, c.PathStyle)
}

// LogValue hides the secret key from slog, whose JSON handler would
// otherwise marshal every field.
func (c S3Config) LogValue() slog.Value {
	return slog.StringValue(c.String())
}

// endpoint returns the host[:port] and whether to use TLS.
func (c S3Config) endpoint() (host string, secure bool, err error) {
	ep := c.Endpoint
	if ep == "" {
		return "s3.amazonaws.com", true, nil
	}
	if !strings.Contains(ep, "://") {
		ep = "https://" + ep
	}
	u, perr := url.Parse(ep)
	switch {
	case perr != nil || u.Host == "":
		return "", false, kalla.Errorf(kalla.EINVALID, "S3 endpoint %s is not a URL like http://host:port or https://host", kalla.Excerpt(kalla.Redact(c.Endpoint)))
	case u.User != nil:
		return "", false, kalla.Errorf(kalla.EINVALID, "S3 endpoint %s must not contain credentials; set the access and secret keys instead", kalla.Excerpt(kalla.Redact(u.String())))
	case u.Scheme != "http" && u.Scheme != "https":
		return "", false, kalla.Errorf(kalla.EINVALID, "S3 endpoint %s must start with http:// or https://", kalla.Excerpt(kalla.Redact(u.String())))
	case strings.Trim(u.Path, "/") != "" || u.RawQuery != "":
		return "", false, kalla.Errorf(kalla.EINVALID, "S3 endpoint %s must be a bare server address, without a path (buckets go in s3:// URIs)", kalla.Excerpt(kalla.Redact(u.String())))
	}
	return u.Host, u.Scheme == "https", nil
}

// s3MaxRetries bounds minio-go's retries (its default is 10, which turns an
// unreachable server into a long wait before the user hears about it).
const s3MaxRetries = 3

// newS3Client returns a client for c that uses transport.
func newS3Client(c S3Config, transport http.RoundTripper) (*minio.Client, error) {
	host, secure, err := c.endpoint()
	if err != nil {
		return nil, err
	}
	lookup := minio.BucketLookupAuto
	if c.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""),
		Secure:       secure,
		Region:       c.Region,
		BucketLookup: lookup,
		Transport:    transport,
		MaxRetries:   s3MaxRetries,
	})
	if err != nil {
		return nil, kalla.WrapError(kalla.EINVALID, kalla.RedactError(err), "S3 endpoint %s", kalla.Excerpt(kalla.Redact(c.Endpoint)))
	}
	return client, nil
}

// newTransport returns an HTTP transport with bounded connect and
// response-header waits. Compression is off so that files arrive byte for
// byte as stored (a .csv.gz served with Content-Encoding: gzip must stay
// gzipped).
func newTransport(connect, header time.Duration, roots *x509.CertPool) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   connect,
		ResponseHeaderTimeout: header,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   8,
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	}
}

// s3Object is a parsed s3://bucket/key URI.
type s3Object struct {
	bucket, key string
}

// String returns the canonical s3://bucket/key form used in messages.
func (o s3Object) String() string { return "s3://" + o.bucket + "/" + o.key }

// parseS3URI splits s3://bucket/key. The key is taken literally (no
// percent-decoding), since S3 keys may contain %, ?, # and spaces.
func parseS3URI(uri string) (s3Object, error) {
	if len(uri) < 5 || !strings.EqualFold(uri[:5], "s3://") {
		return s3Object{}, kalla.Errorf(kalla.EINVALID, "%s is not an s3:// URI", kalla.Excerpt(kalla.Redact(uri)))
	}
	bucket, key, _ := strings.Cut(uri[5:], "/")
	switch {
	case strings.Contains(bucket, "@"):
		return s3Object{}, kalla.Errorf(kalla.EINVALID, "%s: credentials do not belong in s3:// URIs; configure the S3 access and secret keys", kalla.Excerpt(kalla.Redact(uri)))
	case bucket == "" || key == "":
		return s3Object{}, kalla.Errorf(kalla.EINVALID, "%s: an S3 URI must look like s3://bucket/key", kalla.Excerpt(kalla.Redact(uri)))
	}
	return s3Object{bucket: bucket, key: key}, nil
}

// s3Error classifies an error from minio-go about obj. what is a short verb
// phrase for the message ("fetch", "stat", "upload"). The cause is redacted
// (kalla.Redact).
func s3Error(err error, what string, obj s3Object, c S3Config) error {
	cause := kalla.RedactError(err)
	resp := minio.ToErrorResponse(err)
	server := c.Endpoint
	if server == "" {
		server = "AWS S3"
	}
	switch {
	// Credentials first: versitygw answers an unknown access key with
	// 404 XAdminUserNotFound, which must not read as a missing object.
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized || authCodes[resp.Code]:
		return kalla.WrapError(kalla.EUNAVAILABLE, cause, "%s %s: the S3 server at %s refused access (check the access key, secret key and region)", what, obj, kalla.Redact(server))
	case resp.Code == minio.NoSuchBucket:
		return kalla.WrapError(kalla.ENOTFOUND, cause, "%s %s: bucket %q does not exist", what, obj, obj.bucket)
	case resp.Code == minio.NoSuchKey || (resp.StatusCode == http.StatusNotFound && resp.Code == ""):
		return kalla.WrapError(kalla.ENOTFOUND, cause, "%s %s: object does not exist", what, obj)
	case resp.Code != "":
		return kalla.WrapError(kalla.EUNAVAILABLE, cause, "%s %s: the S3 server at %s answered %s", what, obj, kalla.Redact(server), resp.Code)
	}
	return kalla.WrapError(kalla.EUNAVAILABLE, cause, "%s %s: cannot reach the S3 server at %s", what, obj, kalla.Redact(server))
}

// authCodes are S3 error codes that mean the credentials were refused.
var authCodes = map[string]bool{
	"AccessDenied":          true,
	"InvalidAccessKeyId":    true,
	"SignatureDoesNotMatch": true,
	"XAdminUserNotFound":    true, // versitygw, with status 404
	"ExpiredToken":          true,
	"InvalidToken":          true,
}
