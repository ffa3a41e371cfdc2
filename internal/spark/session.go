package spark

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/apache/spark-connect-go/spark/client/channel"
	sparksql "github.com/apache/spark-connect-go/spark/sql"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/credentials/oauth"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// session is one Spark Connect session: its own temp views, cache entries
// and settings on the server, so a run can be interrupted and cleaned up
// without touching other runs.
type session struct {
	sql  sparksql.SparkSession
	conn *grpc.ClientConn
	// id is the server-side session id, learnt from the first request
	// (spark-connect-go does not expose it).
	mu        sync.Mutex
	id        string
	userID    string
	userAgent string
}

// builder wraps spark-connect-go's channel builder: it dials the same way
// (TLS and a bearer token when a token is set, plain gRPC otherwise) but
// keeps the connection and reads the session id off the requests sent on
// it, which Interrupt and ReleaseSession need and the library keeps private.
type builder struct {
	*channel.BaseBuilder
	addr string
	s    *session
}

func (b builder) Build(ctx context.Context) (*grpc.ClientConn, error) {
	host, _, _ := strings.Cut(b.addr, ":")
	opts := []grpc.DialOption{grpc.WithAuthority(host), grpc.WithUnaryInterceptor(b.s.intercept)}
	if b.Token() == "" {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	} else {
		roots, err := x509.SystemCertPool()
		if err != nil {
			return nil, fmt.Errorf("spark connect tls: %w", err)
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots})),
			grpc.WithPerRPCCredentials(oauth.TokenSource{TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: b.Token(), TokenType: "bearer"})}))
	}
	conn, err := grpc.NewClient(b.addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to spark %s: %w", b.addr, err)
	}
	b.s.conn = conn
	return conn, nil
}

// intercept notes the session id of unary requests (Config, Analyze).
func (s *session) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if m, ok := req.(proto.Message); ok {
		r := m.ProtoReflect()
		if f := r.Descriptor().Fields().ByName("session_id"); f != nil && f.Kind() == protoreflect.StringKind {
			if id := r.Get(f).String(); id != "" {
				s.mu.Lock()
				if s.id == "" {
					s.id = id
				}
				s.mu.Unlock()
			}
		}
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// remoteWithToken adds the token to a sc:// connection string as
// spark-connect-go reads it (";token=..."): the token never comes from the
// command line, only from Options.Token.
func remoteWithToken(remote, token string) (string, error) {
	u, err := url.Parse(remote)
	if err != nil || u.Scheme != "sc" || u.Host == "" {
		return "", fmt.Errorf("spark remote %q is not a sc://host:port address", remote)
	}
	if token == "" {
		return remote, nil
	}
	if strings.Contains(remote, ";") {
		return remote + ";token=" + token, nil
	}
	return strings.TrimSuffix(remote, "/") + "/;token=" + token, nil
}

// connect opens a new Spark Connect session.
func connect(ctx context.Context, remote, token string) (*session, error) {
	r, err := remoteWithToken(remote, token)
	if err != nil {
		return nil, err
	}
	base, err := channel.NewBuilder(r)
	if err != nil {
		// The error may quote the connection string, token included.
		return nil, fmt.Errorf("spark remote %q is not a valid Spark Connect address", remote)
	}
	u, _ := url.Parse(remote)
	s := &session{userID: base.User(), userAgent: base.UserAgent()}
	ss, err := sparksql.NewSessionBuilder().WithChannelBuilder(builder{base, u.Host, s}).Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to spark %s: %w", remote, err)
	}
	s.sql = ss
	return s, nil
}

// sessionID is the server-side id of the session, known once a unary
// request went out (connect sends one).
func (s *session) sessionID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// newMessage makes an empty protobuf message of the Spark Connect API by
// its full name (the generated types are internal to spark-connect-go but
// register themselves globally).
func newMessage(name string) (protoreflect.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name))
	if err != nil {
		return nil, fmt.Errorf("spark connect message %s: %w", name, err)
	}
	return mt.New(), nil
}

// call invokes a unary Spark Connect method with a request built by fill.
func (s *session) call(ctx context.Context, method, reqName, respName string, fill func(m protoreflect.Message) error) (protoreflect.Message, error) {
	req, err := newMessage(reqName)
	if err != nil {
		return nil, err
	}
	if err := fill(req); err != nil {
		return nil, err
	}
	resp, err := newMessage(respName)
	if err != nil {
		return nil, err
	}
	if err := s.conn.Invoke(ctx, "/spark.connect.SparkConnectService/"+method, req.Interface(), resp.Interface()); err != nil {
		return nil, err
	}
	return resp, nil
}

// setCommon fills the session id and user context every request carries.
func (s *session) setCommon(m protoreflect.Message, id string) {
	fd := m.Descriptor().Fields()
	m.Set(fd.ByName("session_id"), protoreflect.ValueOfString(id))
	if f := fd.ByName("client_type"); f != nil {
		m.Set(f, protoreflect.ValueOfString("kalla"))
	}
	if f := fd.ByName("user_context"); f != nil {
		uc := m.NewField(f).Message()
		uc.Set(uc.Descriptor().Fields().ByName("user_id"), protoreflect.ValueOfString(s.userID))
		m.Set(f, protoreflect.ValueOfMessage(uc))
	}
}

// interruptAll stops every operation running in the session. It uses its
// own short deadline: it runs when the run's context is already cancelled.
func (s *session) interruptAll(id string) error {
	if id == "" || s.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.call(ctx, "Interrupt", "spark.connect.InterruptRequest", "spark.connect.InterruptResponse", func(m protoreflect.Message) error {
		s.setCommon(m, id)
		f := m.Descriptor().Fields().ByName("interrupt_type")
		ev := f.Enum().Values().ByName("INTERRUPT_TYPE_ALL")
		if ev == nil {
			return fmt.Errorf("spark connect: no INTERRUPT_TYPE_ALL")
		}
		m.Set(f, protoreflect.ValueOfEnum(ev.Number()))
		return nil
	})
	return err
}

// release ends the session on the server, which drops its temp views and
// the data it cached.
func (s *session) release(id string) error {
	if id == "" || s.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := s.call(ctx, "ReleaseSession", "spark.connect.ReleaseSessionRequest", "spark.connect.ReleaseSessionResponse", func(m protoreflect.Message) error {
		s.setCommon(m, id)
		return nil
	})
	return err
}
