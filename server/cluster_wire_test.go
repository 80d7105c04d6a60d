package server

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// A forwarded call reads back as it was sent, whatever its strings hold.
func TestForwardRoundTrip(t *testing.T) {
	c := &call{ref: toolkitRef{"own er", "crm/ü\x00"}, tool: "create_company", params: json.RawMessage(`{"name":"Ada","n":[1,2]}`),
		authToken: "tok \"with\" quotes\n", agent: "key1", user: "user-42", timeout: 90 * time.Second}
	f, err := decodeForward(appendForward(nil, c))
	if err != nil {
		t.Fatal(err)
	}
	if f.ref != c.ref || f.tool != c.tool || string(f.params) != string(c.params) || f.authToken != c.authToken ||
		f.agent != c.agent || f.user != c.user || f.timeout != c.timeout {
		t.Fatalf("decoded %+v", f)
	}
}

// A malformed forwarded call is an error, never a panic, and never lets
// what the toolkit's frame takes as is (tool name, params) through
// unchecked.
func TestForwardMalformed(t *testing.T) {
	good := appendForward(nil, &call{ref: toolkitRef{"o", "t"}, tool: "echo", params: json.RawMessage(`{}`), timeout: time.Second})
	cases := map[string][]byte{
		"empty":            nil,
		"version":          append([]byte{9}, good[1:]...),
		"truncated":        good[:4],
		"huge length":      {forwardVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"bad tool":         appendForward(nil, &call{ref: toolkitRef{"o", "t"}, tool: `x","evil":"`, params: json.RawMessage(`{}`)}),
		"params not JSON":  appendForward(nil, &call{ref: toolkitRef{"o", "t"}, tool: "echo", params: json.RawMessage(`{"a":`)}),
		"no timeout field": good[:len(good)-3],
	}
	for name, b := range cases {
		if _, err := decodeForward(b); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

func TestAnswerRoundTrip(t *testing.T) {
	yes := true
	for _, rep := range []reply{
		{result: json.RawMessage(`{"ok":1}`)},
		{result: json.RawMessage(`"x"`), isError: &yes},
		{failure: "the toolkit's connection closed", reason: reasonDisconnected},
	} {
		got, notHeld, err := decodeAnswer(appendAnswer(nil, rep))
		if err != nil || notHeld || string(got.result) != string(rep.result) || got.failure != rep.failure || got.reason != rep.reason ||
			(got.isError == nil) != (rep.isError == nil) {
			t.Errorf("%+v came back as %+v, %v, %v", rep, got, notHeld, err)
		}
	}
	if _, notHeld, err := decodeAnswer([]byte{'N'}); !notHeld || err != nil {
		t.Errorf("N: %v %v", notHeld, err)
	}
	// An unknown reason is counted as a lost connection, not as a new
	// metrics label.
	if got, _, _ := decodeAnswer([]byte("F\x05bogusmsg")); got.reason != reasonDisconnected || got.failure != "msg" {
		t.Errorf("unknown reason: %+v", got)
	}
	for _, b := range [][]byte{nil, {'R'}, {'R', '?'}, {'F'}, {'F', 200, 'x'}, {'Z'}} {
		if _, _, err := decodeAnswer(b); err == nil {
			t.Errorf("%q: decoded without error", b)
		}
	}
}

func FuzzDecodeForward(f *testing.F) {
	f.Add(appendForward(nil, &call{ref: toolkitRef{"o", "t"}, tool: "echo", params: json.RawMessage(`{"a":1}`), authToken: "x", timeout: time.Second}))
	f.Add([]byte{forwardVersion, 1, 'o'})
	f.Fuzz(func(t *testing.T, b []byte) {
		fw, err := decodeForward(b)
		if err != nil {
			return
		}
		if !validToolName(fw.tool) || !json.Valid(fw.params) {
			t.Fatalf("accepted %+v", fw)
		}
		c := &call{ref: fw.ref, tool: fw.tool, params: fw.params, authToken: fw.authToken, agent: fw.agent, user: fw.user, timeout: fw.timeout}
		again, err := decodeForward(appendForward(nil, c))
		if err != nil || again.ref != fw.ref || string(again.params) != string(fw.params) {
			t.Fatalf("round trip: %+v, %v", again, err)
		}
	})
}

func FuzzDecodeAnswer(f *testing.F) {
	f.Add([]byte(`R-{"a":1}`))
	f.Add([]byte("F\x07timeoutlate"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, _, err := decodeAnswer(b)
		if err == nil && rep.failure != "" {
			if _, ok := reasonSet[rep.reason]; !ok {
				t.Fatalf("reason %q", rep.reason)
			}
		}
	})
}

// An announcement in parts counts once all its parts have come; a
// malformed one, or one of this replica's own, changes nothing.
func TestPresenceParts(t *testing.T) {
	h := newHub(time.Minute, time.Now)
	cl := &cluster{h: h, id: "self000000", prefix: "p", peers: map[string]*peer{}, kick: make(chan struct{}, 1),
		log: slog.New(slog.DiscardHandler)}
	cl.view.Store(&presenceView{})
	ref1, ref2 := toolkitRef{"o", "a"}, toolkitRef{"o", "b"}
	send := func(m presenceMsg) {
		data, _ := json.Marshal(m)
		cl.handlePresence(&nats.Msg{Data: data})
	}
	send(presenceMsg{Replica: "peer000000", Seq: 7, Part: 0, Parts: 2, Toolkits: []presenceEntry{{Owner: "o", Name: "a", Conns: 1}}})
	if len(cl.holders(ref1)) != 0 {
		t.Fatal("half an announcement was taken")
	}
	send(presenceMsg{Replica: "peer000000", Seq: 7, Part: 1, Parts: 2, Toolkits: []presenceEntry{{Owner: "o", Name: "b", Conns: 2, InFlight: 3}}})
	if h := cl.holders(ref2); len(h) != 1 || h[0].conns != 2 || h[0].inFlight != 3 || h[0].callSubj != "p.call.peer000000" || len(cl.holders(ref1)) != 1 {
		t.Fatalf("holders %v %v", cl.holders(ref1), h)
	}
	cl.handlePresence(&nats.Msg{Data: []byte(`{"replica":`)})
	send(presenceMsg{Replica: "self000000", Toolkits: []presenceEntry{{Owner: "o", Name: "c", Conns: 1}}})
	send(presenceMsg{Replica: "peer000000", Part: 5, Parts: 2})
	if len(cl.holders(toolkitRef{"o", "c"})) != 0 || len(cl.holders(ref2)) != 1 {
		t.Fatal("a malformed or own announcement changed the view")
	}
	// Inbox polls: one waiting, and one 100ms ago.
	send(presenceMsg{Replica: "peer000000", Toolkits: []presenceEntry{{Owner: "o", Name: "a", PollAge: 101}, {Owner: "o", Name: "b", Polls: 1}}})
	now := time.Now()
	if online, last := cl.remoteInbox(ref1, time.Second, now); !online || now.Sub(last) < 100*time.Millisecond {
		t.Fatalf("a poll 100ms ago: online %v, last %v ago", online, now.Sub(last))
	}
	if online, _ := cl.remoteInbox(ref1, 50*time.Millisecond, now); online {
		t.Fatal("a poll older than the lease counts")
	}
	if online, _ := cl.remoteInbox(ref2, time.Millisecond, now); !online {
		t.Fatal("a waiting poll does not count")
	}
	send(presenceMsg{Replica: "peer000000", Leaving: true})
	if len(cl.holders(ref2)) != 0 || cl.replicas() != 1 {
		t.Fatal("a leaving replica is still counted")
	}
}

// The NATS URL is shown without its password or token.
func TestRedactNATSURL(t *testing.T) {
	got := RedactNATSURL("nats://u:s3cret@a:4222, nats://tok3n@b:4222,nats://c:4222")
	if strings.Contains(got, "s3cret") || strings.Contains(got, "tok3n") || !strings.Contains(got, "nats://u:xxxxx@a:4222") || !strings.Contains(got, "nats://c:4222") {
		t.Fatalf("redacted: %s", got)
	}
}
