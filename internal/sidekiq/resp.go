package sidekiq

// A streamed RESP2 pipeline of our own, under the go-redis client. go-redis parses all the
// replies of a pipeline into memory before it returns any, so a pipeline over a whole fleet
// holds every reply at once (31 MiB of maps at 10,000 processes × 5 jobs). Here one goroutine
// writes the commands, a chunk at a time, at most a few chunks ahead of the replies, while the
// caller reads the replies as they arrive into a reused buffer: one pipelined stream whatever
// the fleet size, in memory bounded by the window.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
)

// maxBulk bounds one bulk string (Redis's own proto-max-bulk-len default is 512 MB); a
// declared length is never allocated up front, only as the bytes arrive.
const maxBulk = 512 << 20

// errProtocol is a reply this reader cannot read: the stream is abandoned.
var errProtocol = errors.New("redis protocol error")

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProtocol, fmt.Sprintf(format, args...))
}

// replyError is an error reply (-WRONGTYPE …): an error of one command, which the rest of the
// stream survives. It is a redis.Error, as go-redis's own reply errors are, so isReplyError
// and connErr treat it the same way.
type replyError string

func (e replyError) Error() string { return string(e) }

// RedisError marks replyError as a redis.Error.
func (replyError) RedisError() {}

var _ redis.Error = replyError("")

// respWriter writes commands into a buffered connection.
type respWriter struct {
	bw  *bufio.Writer
	num []byte
}

func (w *respWriter) header(c byte, n int) {
	w.num = append(append(w.num[:0], c), strconv.Itoa(n)...)
	w.num = append(w.num, '\r', '\n')
	_, _ = w.bw.Write(w.num)
}

// command writes one command of plain arguments.
func (w *respWriter) command(args ...string) {
	w.header('*', len(args))
	for _, a := range args {
		w.header('$', len(a))
		_, _ = w.bw.WriteString(a)
		_, _ = w.bw.WriteString("\r\n")
	}
}

// keyCommand writes `name prefix+id+suffix` without building the key.
func (w *respWriter) keyCommand(name, prefix, id, suffix string) {
	w.header('*', 2)
	w.header('$', len(name))
	_, _ = w.bw.WriteString(name)
	_, _ = w.bw.WriteString("\r\n")
	w.header('$', len(prefix)+len(id)+len(suffix))
	_, _ = w.bw.WriteString(prefix)
	_, _ = w.bw.WriteString(id)
	_, _ = w.bw.WriteString(suffix)
	_, _ = w.bw.WriteString("\r\n")
}

// respReader reads RESP2 replies.
type respReader struct {
	br *bufio.Reader
}

// line reads one line without its CRLF; the bytes are valid until the next read.
func (r *respReader) line() ([]byte, error) {
	b, err := r.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, protoErr("reply line longer than %d bytes", r.br.Size())
		}
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if len(b) < 3 || b[len(b)-2] != '\r' {
		return nil, protoErr("malformed reply line %q", shortBytes(b))
	}
	return b[:len(b)-2], nil
}

// length reads the count of a '*' or '$' header: -1 (nil) up to limit.
func length(b []byte, limit int) (int, error) {
	if string(b) == "-1" {
		return -1, nil
	}
	if len(b) == 0 || len(b) > 10 {
		return 0, protoErr("bad length %q", shortBytes(b))
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, protoErr("bad length %q", shortBytes(b))
		}
		n = n*10 + int(c-'0')
	}
	if n > limit {
		return 0, protoErr("length %d over %d", n, limit)
	}
	return n, nil
}

func shortBytes(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// status reads a reply that must be +OK-like; an error reply is returned as a replyError.
func (r *respReader) status() error {
	b, err := r.line()
	if err != nil {
		return err
	}
	switch b[0] {
	case '+':
		return nil
	case '-':
		return replyError(b[1:])
	}
	return protoErr("unexpected reply %q", shortBytes(b))
}

// span is a bulk string in a rawChunk's buffer.
type span struct{ off, end int }

// rawHash is one HGETALL reply in a rawChunk: pairs spans from first (field, value, field, …),
// or a reply error.
type rawHash struct {
	first, pairs int
	err          error
}

// rawChunk holds the raw replies of one chunk of processes, read off the wire, to be decoded
// by another goroutine; it is reused chunk after chunk.
type rawChunk struct {
	buf    []byte
	spans  []span
	hashes []rawHash
}

func (ch *rawChunk) reset() {
	ch.buf, ch.spans, ch.hashes = ch.buf[:0], ch.spans[:0], ch.hashes[:0]
}

// str is a view of a span: valid only until the chunk is reused.
func (ch *rawChunk) str(s span) string {
	if s.end == s.off {
		return ""
	}
	return unsafe.String(&ch.buf[s.off], s.end-s.off)
}

// readHash reads one HGETALL reply (RESP2: an array of field, value, …) into ch.
func (r *respReader) readHash(ch *rawChunk) error {
	b, err := r.line()
	if err != nil {
		return err
	}
	h := rawHash{first: len(ch.spans)}
	switch b[0] {
	case '-':
		h.err = replyError(b[1:])
	case '*':
		n, err := length(b[1:], 1<<31-1)
		if err != nil {
			return err
		}
		if n < 0 { // a nil array: no hash
			n = 0
		}
		if n%2 != 0 {
			return protoErr("hash reply of %d elements", n)
		}
		for i := 0; i < n; i++ {
			if err := r.readBulk(ch); err != nil {
				return err
			}
		}
		h.pairs = n / 2
	default:
		return protoErr("unexpected reply %q to HGETALL", shortBytes(b))
	}
	ch.hashes = append(ch.hashes, h)
	return nil
}

// readBulk reads one bulk string into ch's buffer, growing it only as the bytes arrive.
func (r *respReader) readBulk(ch *rawChunk) error {
	b, err := r.line()
	if err != nil {
		return err
	}
	if b[0] != '$' {
		return protoErr("unexpected reply %q in a hash", shortBytes(b))
	}
	n, err := length(b[1:], maxBulk)
	if err != nil {
		return err
	}
	off := len(ch.buf)
	for left := n; left > 0; {
		k := min(left, 64<<10)
		ch.buf = slices.Grow(ch.buf, k) // not append(make): no clearing of bytes read over
		ch.buf = ch.buf[:len(ch.buf)+k]
		if _, err := io.ReadFull(r.br, ch.buf[len(ch.buf)-k:]); err != nil {
			return unexpectedEOF(err)
		}
		left -= k
	}
	ch.spans = append(ch.spans, span{off, len(ch.buf)})
	if n < 0 {
		return nil // a nil bulk: read as empty
	}
	var crlf [2]byte
	if _, err := io.ReadFull(r.br, crlf[:]); err != nil {
		return unexpectedEOF(err)
	}
	if crlf != [2]byte{'\r', '\n'} {
		return protoErr("bulk string not ended by CRLF")
	}
	return nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// respConn is one connection of a stream, with the timeouts of the go-redis client.
type respConn struct {
	conn                      net.Conn
	r                         respReader
	w                         respWriter
	readTimeout, writeTimeout time.Duration
	deadline                  time.Time // the context's, zero for none
}

// Read sets the read deadline (ReadTimeout from now, or the context's if sooner) and reads:
// a timeout bounds each wait for more bytes, as go-redis bounds each reply.
func (c *respConn) Read(p []byte) (int, error) {
	_ = c.conn.SetReadDeadline(c.deadlineAfter(c.readTimeout))
	return c.conn.Read(p)
}

// Write is Read's counterpart for writes.
func (c *respConn) Write(p []byte) (int, error) {
	_ = c.conn.SetWriteDeadline(c.deadlineAfter(c.writeTimeout))
	return c.conn.Write(p)
}

func (c *respConn) deadlineAfter(d time.Duration) time.Time {
	var t time.Time
	if d > 0 {
		t = time.Now().Add(d)
	}
	if !c.deadline.IsZero() && (t.IsZero() || c.deadline.Before(t)) {
		t = c.deadline
	}
	return t
}

// dialStream opens a connection of its own with the options the go-redis client was made
// from: its dialer (which does TLS, and finds the master through the Sentinels), then AUTH
// and SELECT as go-redis would, in RESP2 (no HELLO).
func (c *Client) dialStream(ctx context.Context) (*respConn, error) {
	rc, ok := c.rdb.(*redis.Client)
	if !ok {
		return nil, fmt.Errorf("a streamed read needs a single Redis or a Sentinel master, not %T", c.rdb)
	}
	opt := rc.Options()
	dctx := ctx
	if opt.DialTimeout > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, opt.DialTimeout)
		defer cancel()
	}
	dial := opt.Dialer
	if dial == nil {
		dial = redis.NewDialer(opt)
	}
	conn, err := dial(dctx, opt.Network, opt.Addr)
	if err != nil {
		return nil, err
	}
	rc2 := &respConn{conn: conn, readTimeout: opt.ReadTimeout, writeTimeout: opt.WriteTimeout}
	rc2.deadline, _ = ctx.Deadline()
	rc2.r.br = bufio.NewReaderSize(rc2, 64<<10)
	rc2.w.bw = bufio.NewWriterSize(rc2, 64<<10)
	user, pass := opt.Username, opt.Password
	switch {
	case opt.CredentialsProviderContext != nil:
		if user, pass, err = opt.CredentialsProviderContext(ctx); err != nil {
			_ = conn.Close()
			return nil, err
		}
	case opt.CredentialsProvider != nil:
		user, pass = opt.CredentialsProvider()
	}
	n := 0
	if pass != "" {
		if user != "" {
			rc2.w.command("AUTH", user, pass)
		} else {
			rc2.w.command("AUTH", pass)
		}
		n++
	}
	if opt.DB > 0 {
		rc2.w.command("SELECT", strconv.Itoa(opt.DB))
		n++
	}
	if n > 0 {
		stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
		err := rc2.w.bw.Flush()
		for i := 0; i < n && err == nil; i++ {
			err = rc2.r.status()
		}
		stop()
		if err != nil {
			if cerr := ctxErr(ctx); cerr != nil {
				err = cerr
			}
			_ = conn.Close()
			return nil, err
		}
	}
	return rc2, nil
}

// ctxErr is ctx's error when it is done or its deadline has passed: a socket deadline set to
// the context's may fire a moment before the context's own timer, and the error is then the
// context's, not the connection's. nil otherwise.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// stream sends chunks 0…n-1 on a connection of its own and reads their replies in order:
// write(w, i) writes chunk i's commands (on a goroutine of its own), read(r, i) reads all of
// its replies. At most ahead chunks are written and not yet read, so neither this process
// nor Redis's output buffer holds more than that. A read error stops the stream (read should
// return ctx's error when it gives up waiting); a cancelled ctx closes the connection, so
// nothing stays blocked, and stream returns ctx's error. No goroutine outlives the call.
func (c *Client) stream(ctx context.Context, n, ahead int, write func(w *respWriter, i int), read func(r *respReader, i int) error) error {
	conn, err := c.dialStream(ctx)
	if err != nil {
		if cerr := ctxErr(ctx); cerr != nil {
			return cerr
		}
		return err
	}
	defer conn.conn.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(sctx, func() { _ = conn.conn.Close() })
	defer stop()
	tokens := make(chan struct{}, max(ahead, 1))
	var werr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			select {
			case tokens <- struct{}{}:
			case <-sctx.Done():
				return
			}
			write(&conn.w, i)
			if err := conn.w.bw.Flush(); err != nil {
				if sctx.Err() == nil { // not the reader's own cancel after an error
					werr = err
				}
				cancel() // the reader waits for replies that will not come
				return
			}
		}
	}()
	var rerr error
	for i := 0; i < n; i++ {
		if rerr = read(&conn.r, i); rerr != nil {
			break
		}
		<-tokens
	}
	cancel()
	wg.Wait()
	if rerr == nil && werr == nil {
		return nil
	}
	if cerr := ctxErr(ctx); cerr != nil {
		return cerr
	}
	if werr != nil {
		return werr
	}
	return rerr
}
