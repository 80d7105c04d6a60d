package server

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/atpgo/atp/internal/jsontree"
	"github.com/atpgo/atp/server/store"
)

// Request bodies are read only once the server knows whose they are. A
// request that brings its key in a header or the path is authenticated
// first, and its body then read up to Config.BodyLimit within
// Config.BodyReadTimeout. The Python SDK and our runtime register tools,
// and old LLM clients call, with the key only inside the JSON body: for
// those the server reads the body up to its api_key member, at most
// Config.UnauthBodyLimit bytes within Config.UnauthReadTimeout, with at
// most Config.MaxUnauthRequests such reads at once, and only then the rest.
// Nobody without a key can make the server hold more than
// MaxUnauthRequests x UnauthBodyLimit bytes, or hold them longer than
// UnauthReadTimeout.

// bodyLimits is what one phase of a body read may take.
type bodyLimits struct {
	limit       int64
	timeout     time.Duration
	limitFlag   string // the atp serve flag that sets limit, for errors
	timeoutFlag string
}

func (s *Server) authedBody() bodyLimits {
	return bodyLimits{s.cfg.BodyLimit, s.cfg.BodyReadTimeout, "--body-limit", "--body-read-timeout"}
}

func (s *Server) unauthBody() bodyLimits {
	return bodyLimits{s.cfg.UnauthBodyLimit, s.cfg.UnauthReadTimeout, "--unauth-body-limit", "--unauth-read-timeout"}
}

// bodyError is a failed body read, with the status to answer.
type bodyError struct {
	status int
	msg    string
}

func (e *bodyError) Error() string { return e.msg }

// readBody reads the body of a request whose key has been checked (in its
// path or header) and decodes it with decode. On failure it has answered
// (408, 413 or 400) and returns false.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, decode func([]byte) error) bool {
	rc := http.NewResponseController(w)
	data, err := readBodyFrom(rc, http.MaxBytesReader(w, r.Body, s.cfg.BodyLimit), nil, s.authedBody())
	if err != nil {
		writeBodyError(w, err)
		return false
	}
	bodyDone(w)
	if err := decode(data); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return false
	}
	return true
}

// keyedBody authenticates a POST whose key comes in the Authorization
// header (one of schemes) or as the api_key member of its JSON body, and
// reads and decodes its body. bodyKey returns the api_key decode found: when
// the header also brings one, the two must agree. On failure it has
// answered and returns false.
func (s *Server) keyedBody(w http.ResponseWriter, r *http.Request, kind store.KeyKind, schemes []string,
	decode func([]byte) error, bodyKey func() string) (store.Key, bool) {
	rc := http.NewResponseController(w)
	body := http.MaxBytesReader(w, r.Body, s.cfg.BodyLimit)
	var (
		k      store.Key
		apiKey string
		data   []byte
		err    error
	)
	if apiKey = bearer(r, schemes...); apiKey != "" {
		if k, err = s.authenticate(r.Context(), apiKey, kind); err != nil {
			writeAuthError(w, err)
			return k, false
		}
		if !s.admitRequest(w, k) {
			return k, false
		}
		if data, err = readBodyFrom(rc, body, nil, s.authedBody()); err != nil {
			writeBodyError(w, err)
			return k, false
		}
	} else {
		var ok bool
		if k, apiKey, data, ok = s.readToKey(w, r, rc, body, kind); !ok {
			return k, false
		}
		if !s.admitRequest(w, k) {
			return k, false
		}
		if data, err = readBodyFrom(rc, body, data, s.authedBody()); err != nil {
			writeBodyError(w, err)
			return k, false
		}
	}
	bodyDone(w)
	if err := decode(data); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return k, false
	}
	// A body may repeat api_key, and the decoder keeps the last: it must be
	// the key that was checked.
	if bk := bodyKey(); bk != "" && subtle.ConstantTimeCompare([]byte(bk), []byte(apiKey)) != 1 {
		writeError(w, http.StatusUnauthorized, "the API key in the Authorization header and the one in the body differ")
		return k, false
	}
	return k, true
}

// readToKey reads a body without a key header up to its api_key member,
// under the unauthenticated budget, and authenticates that key. It returns
// the bytes read so far for the caller to finish.
func (s *Server) readToKey(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, body io.Reader, kind store.KeyKind) (store.Key, string, []byte, bool) {
	release, ok := s.unauth.acquire()
	if !ok {
		writeBusy(w, fmt.Sprintf("the server is reading %d requests that have not shown a key yet, its limit (--max-unauth-requests): retry shortly, or send the key in the Authorization header", s.cfg.MaxUnauthRequests))
		return store.Key{}, "", nil, false
	}
	defer release()
	lim := s.unauthBody()
	rc.SetReadDeadline(time.Now().Add(lim.timeout))
	cr := &cappedReader{r: body, n: lim.limit}
	var seen bytes.Buffer
	apiKey, err := findAPIKey(io.TeeReader(cr, &seen))
	switch {
	case cr.over:
		err = &bodyError{http.StatusRequestEntityTooLarge, fmt.Sprintf(
			"no api_key within the first %d bytes of the body (--unauth-body-limit): put api_key first, or send the key in the Authorization header", lim.limit)}
	case err != nil:
		err = classifyReadErr(err, lim)
	}
	if err != nil {
		writeBodyError(w, err)
		return store.Key{}, "", nil, false
	}
	k, err := s.authenticate(r.Context(), apiKey, kind)
	if err != nil {
		writeAuthError(w, err)
		return k, "", nil, false
	}
	return k, apiKey, seen.Bytes(), true
}

// findAPIKey reads a JSON object up to its api_key member and returns its
// value, "" when the object has none. Other members' values are skipped.
func findAPIKey(r io.Reader) (string, error) {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	if tok != json.Delim('{') {
		return "", &bodyError{http.StatusBadRequest, "expected a JSON object, got " + describeToken(tok)}
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", err
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return "", err
		}
		if tok != "api_key" {
			continue
		}
		var key *string
		if json.Unmarshal(value, &key) != nil {
			return "", &bodyError{http.StatusBadRequest, "api_key: expected a string, got " + jsontree.KindOfText(value)}
		}
		if key == nil {
			return "", nil
		}
		return *key, nil
	}
	// More stops on a read error too: the closing brace tells them apart.
	if _, err := dec.Token(); err != nil {
		return "", err
	}
	return "", nil
}

func describeToken(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "a number"
}

// readBodyFrom reads the rest of a body after prefix, within lim's deadline,
// then clears the deadline: once the body is in, net/http watches the
// connection for the client going away, and a deadline passing then would
// cancel a long call or poll.
func readBodyFrom(rc *http.ResponseController, body io.Reader, prefix []byte, lim bodyLimits) ([]byte, error) {
	rc.SetReadDeadline(time.Now().Add(lim.timeout))
	buf := bytes.NewBuffer(prefix)
	_, err := buf.ReadFrom(body)
	if err != nil {
		return nil, classifyReadErr(err, lim)
	}
	rc.SetReadDeadline(time.Time{})
	return buf.Bytes(), nil
}

// bodyDone tells the request's recorder that its body has been read whole:
// an error answer then keeps the connection.
func bodyDone(w http.ResponseWriter) {
	if rec, ok := w.(*statusRecorder); ok {
		rec.bodyRead = true
	}
}

// classifyReadErr turns a body read error into the answer for it.
func classifyReadErr(err error, lim bodyLimits) error {
	var be *bodyError
	var tooBig *http.MaxBytesError
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &be):
		return be
	case errors.As(err, &tooBig):
		return &bodyError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than the limit of %d bytes (--body-limit)", tooBig.Limit)}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &bodyError{http.StatusRequestTimeout, fmt.Sprintf("the request body did not arrive within %s (%s)", lim.timeout, lim.timeoutFlag)}
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &bodyError{http.StatusBadRequest, jsonError(err).Error()}
	}
	return &bodyError{http.StatusBadRequest, "reading the request body: " + err.Error()}
}

// writeBodyError answers a failed body read. After a timeout or an
// oversized body the connection is closed: what is left of the body is not
// worth reading.
func writeBodyError(w http.ResponseWriter, err error) {
	var be *bodyError
	if !errors.As(err, &be) {
		be = &bodyError{http.StatusBadRequest, err.Error()}
	}
	if be.status == http.StatusRequestTimeout || be.status == http.StatusRequestEntityTooLarge {
		w.Header().Set("Connection", "close")
	}
	writeError(w, be.status, be.msg)
}

// writeBusy answers 503 with Retry-After: a limit of the server's own, not
// of the caller's, was reached; trying again soon may work.
func writeBusy(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, msg)
}

// cappedReader reads at most n bytes, then reports EOF and sets over when
// the underlying reader had more to give.
type cappedReader struct {
	r    io.Reader
	n    int64
	over bool
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		// Probe one byte: at exactly the limit the body may be complete.
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			c.over = true
		} else if err != nil && err != io.EOF {
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}
