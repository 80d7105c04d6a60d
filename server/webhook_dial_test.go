package server

import (
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// Without AllowPrivateWebhooks, a webhook URL whose host is a literal
// address that is not public (or a name for loopback, or a number some
// resolvers read as an address) is refused at registration with 400,
// saying why and how to allow it for development.
func TestWebhookRegistrationRefusesPrivateAddresses(t *testing.T) {
	e := newOAuthEnv(t, func(c *Config) { c.AllowPrivateWebhooks = false })
	for _, c := range []struct{ host, kind string }{
		{"127.0.0.1", "loopback"},
		{"127.8.9.10", "loopback"},
		{"[::1]", "loopback"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"192.168.1.1", "private"},
		{"[fc00::1]", "private"},
		{"[fd12:3456::1]", "private"},
		{"169.254.169.254", "link-local"},
		{"[fe80::1]", "link-local"},
		{"0.0.0.0", "unspecified"},
		{"[::]", "unspecified"},
		{"224.0.0.1", "link-local multicast"},
		{"239.1.2.3", "multicast"},
		{"[ff02::1]", "link-local multicast"},
		{"[ff0e::1]", "multicast"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"[::ffff:127.0.0.1]", "IPv4-mapped IPv6 address of a loopback"},
		{"[::ffff:10.0.0.1]", "IPv4-mapped IPv6 address of a private"},
		{"198.18.0.1", "special-purpose"},
		{"[64:ff9b::7f00:1]", "special-purpose"},
		{"localhost", "loopback name"},
		{"api.localhost", "loopback name"},
	} {
		status, m := e.llmPost(e.llmKey, "webhooks/register/", map[string]any{"url": "http://" + c.host + ":8080/hook"})
		msg, _ := m["error"].(string)
		if status != http.StatusBadRequest || !strings.HasPrefix(msg, "url: ") || !strings.Contains(msg, c.kind) ||
			!strings.Contains(msg, "--allow-private-webhooks") {
			t.Errorf("register %s = %d %q, want 400 naming a %s address and --allow-private-webhooks", c.host, status, msg, c.kind)
		}
	}
	for _, host := range []string{"2130706433", "0x7f.1", "127.1", "017700000001", "127.0.0.1."} {
		status, m := e.llmPost(e.llmKey, "webhooks/register/", map[string]any{"url": "http://" + host + "/hook"})
		if msg, _ := m["error"].(string); status != http.StatusBadRequest || !strings.Contains(msg, "a.b.c.d") {
			t.Errorf("register %s = %d %q, want 400 asking for a dotted quad", host, status, msg)
		}
	}
	for _, u := range []string{"https://hooks.example.com/atp", "https://8.8.8.8/atp", "http://[2606:4700::1111]:8443/atp", "https://10.example.com/"} {
		if status, m := e.llmPost(e.llmKey, "webhooks/register/", map[string]any{"url": u}); status != http.StatusOK {
			t.Errorf("register %s = %d %v, want 200", u, status, m)
		} else {
			e.remember(m["secret"].(string))
		}
	}
}

// A host name is checked on the address it resolves to when the delivery
// dials: a name whose DNS answer is 127.0.0.1 (what a rebinding server
// answers once the name has been accepted) never reaches the receiver on
// loopback, and neither does a literal loopback URL stored while private
// webhooks were allowed. Each is given up at once, with the reason.
func TestWebhookDeliveryRefusedAtDial(t *testing.T) {
	var hits atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer receiver.Close()
	port := receiver.Listener.Addr().(*net.TCPAddr).Port
	dns := newRebindingDNS(t, net.IPv4(127, 0, 0, 1))
	e := newOAuthEnv(t, func(c *Config) {
		c.AllowPrivateWebhooks = false
		c.webhookResolver = dns.Resolver
	})
	hookURL := "http://rebind.test:" + itoa(port) + "/internal-admin/delete-all"
	e.registerWebhook(hookURL, eventConnectionSuccess)
	// A literal loopback URL already in the store (registered while the
	// server allowed private webhooks) is refused when dialled too.
	if _, err := e.srv.oauth.vault.CreateWebhook(context.Background(), "default", receiver.URL+"/stored", []string{eventConnectionSuccess}); err != nil {
		t.Fatal(err)
	}
	e.connect("rae")
	eventually(t, "both deliveries to be given up", func() bool {
		return strings.Count(e.logs.String(), `msg="webhook delivery failed; giving up"`) == 2
	})
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback receiver got %d deliveries", n)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "refused: 127.0.0.1:"+itoa(port)+" is not a public address") || strings.Count(logs, "attempts=1") < 2 ||
		!strings.Contains(logs, "--allow-private-webhooks") {
		t.Fatalf("the refusals are not logged with their reason:\n%s", logs)
	}
	if strings.Contains(logs, "delete-all") {
		t.Fatalf("a webhook URL was logged:\n%s", logs)
	}
	if dns.queries.Load() == 0 {
		t.Fatal("the name was never resolved: the test proves nothing")
	}
	e.checkLogs()
}

// A delivery answered with a redirect ends there: the redirect, which
// could point anywhere, is never followed.
func TestWebhookRedirectNotFollowed(t *testing.T) {
	var inner atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inner.Add(1) }))
	defer target.Close()
	redirects := make(chan struct{}, 4)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/admin", http.StatusTemporaryRedirect)
		redirects <- struct{}{}
	}))
	defer redirector.Close()
	e := newOAuthEnv(t, nil)
	e.registerWebhook(redirector.URL, eventConnectionSuccess)
	e.connect("ray")
	<-redirects
	eventually(t, "the redirected delivery to be given up", func() bool {
		return strings.Contains(e.logs.String(), `msg="webhook delivery failed; giving up"`)
	})
	if n := inner.Load(); n != 0 {
		t.Fatalf("the redirect was followed (%d requests)", n)
	}
}

// rebindingDNS is a DNS server on loopback UDP that answers every A query
// with one address and every other query with no records, as a server
// that rebinds a name to an internal address does.
type rebindingDNS struct {
	*net.Resolver
	queries atomic.Int32
}

func newRebindingDNS(t *testing.T, answer net.IP) *rebindingDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	d := &rebindingDNS{}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if reply := dnsAnswer(buf[:n], answer.To4()); reply != nil {
				d.queries.Add(1)
				pc.WriteTo(reply, from)
			}
		}
	}()
	d.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dialer net.Dialer
		return dialer.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
	return d
}

// dnsAnswer builds the reply to a one-question DNS query (RFC 1035 §4):
// the question echoed, and for type A one answer with ip.
func dnsAnswer(q []byte, ip net.IP) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	end := 12
	for end < len(q) && q[end] != 0 {
		end += int(q[end]) + 1
	}
	end += 5 // the root label, QTYPE, QCLASS
	if end > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[end-4:])
	out := append([]byte{}, q[:end]...)
	binary.BigEndian.PutUint16(out[2:], 0x8180) // a response, recursion desired and available, no error
	binary.BigEndian.PutUint16(out[8:], 0)      // NSCOUNT
	binary.BigEndian.PutUint16(out[10:], 0)     // ARCOUNT: the query's EDNS record is not echoed
	if qtype != 1 {
		binary.BigEndian.PutUint16(out[6:], 0)
		return out
	}
	binary.BigEndian.PutUint16(out[6:], 1)      // ANCOUNT
	out = append(out, 0xc0, 12)                 // the name: a pointer to the question's
	out = binary.BigEndian.AppendUint16(out, 1) // type A
	out = binary.BigEndian.AppendUint16(out, 1) // class IN
	out = binary.BigEndian.AppendUint32(out, 0) // TTL
	out = binary.BigEndian.AppendUint16(out, 4) // RDLENGTH
	return append(out, ip...)
}
