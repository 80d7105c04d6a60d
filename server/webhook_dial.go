package server

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"code.dny.dev/ssrf"
)

// A webhook URL comes from an LLM key's holder, and the server POSTs to it
// from inside the operator's network: left alone, that lets anyone with a
// key make the server send requests to its own admin ports, the cloud
// metadata service or the office LAN. So deliveries only go to public
// addresses, and the check runs on the address actually dialled (a
// net.Dialer Control func, after DNS resolution): a name that resolves to a
// public address when checked and to 127.0.0.1 when dialled (DNS
// rebinding) is caught at the dial. Literal addresses are also refused at
// registration, where the error can say why. Redirects are never followed,
// and deliveries never go through an HTTP proxy (a proxy would dial for us,
// out of the check's sight). Config.AllowPrivateWebhooks turns all of this
// off for development.
//
// What counts as not public is code.dny.dev/ssrf's list, kept in step with
// IANA's special-purpose registries: loopback, private (RFC 1918, IPv6
// ULA), link-local, unspecified, multicast, CGNAT (100.64.0.0/10),
// documentation and benchmarking ranges, and for IPv6 anything outside
// global unicast, which includes IPv4-mapped (::ffff:127.0.0.1) and NAT64
// forms.

// webhookGuard refuses every destination that is not a public address, on
// any port.
var webhookGuard = ssrf.New(ssrf.WithAnyPort())

// errPrivateDestination marks a delivery refused for where it would go.
var errPrivateDestination = errors.New("not a public address")

// webhookTransport is the HTTP transport deliveries use: direct dials, the
// destination checked at each dial unless allowPrivate, and resolver (nil:
// the system's) for names.
func webhookTransport(allowPrivate bool, resolver *net.Resolver) *http.Transport {
	d := &net.Dialer{Timeout: webhookTimeout, KeepAlive: 30 * time.Second, Resolver: resolver}
	if !allowPrivate {
		d.Control = webhookGuard.Safe
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   webhookTimeout,
		ResponseHeaderTimeout: webhookTimeout,
	}
}

// checkWebhookHost refuses, at registration, a URL host that names a
// destination deliveries would refuse anyway: a literal address that is not
// public, a number that only some resolvers read as an IPv4 address
// ("2130706433", "0x7f.1"), or localhost. Other names are checked when
// dialled.
func checkWebhookHost(host string) error {
	if addr, err := netip.ParseAddr(host); err == nil {
		if err := webhookGuard.SafeAddr(addr); err != nil {
			return fmt.Errorf("%s is %s address: %w", host, describeAddr(addr), errPrivateDestination)
		}
		return nil
	}
	if numericHost(host) {
		return fmt.Errorf("%q is not a dotted-quad IPv4 address or a host name; some resolvers read it as an IPv4 address: write the address as a.b.c.d", host)
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return fmt.Errorf("%s is a loopback name: %w", host, errPrivateDestination)
	}
	return nil
}

// numericHost reports whether every dot-separated part of host is a number
// (decimal, 0x hex or 0 octal), as in the IPv4 forms inet_aton accepts.
func numericHost(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return false
	}
	for part := range strings.SplitSeq(host, ".") {
		if _, err := strconv.ParseUint(part, 0, 32); err != nil {
			return false
		}
	}
	return true
}

// describeAddr names the kind of a refused address, for the error.
func describeAddr(a netip.Addr) string {
	if a.Is4In6() {
		return "an IPv4-mapped IPv6 address of " + describeAddr(a.Unmap())
	}
	switch {
	case a.IsLoopback():
		return "a loopback"
	case a.IsPrivate():
		return "a private"
	case a.IsUnspecified():
		return "an unspecified"
	case a.IsLinkLocalUnicast():
		return "a link-local"
	case a.IsLinkLocalMulticast():
		return "a link-local multicast"
	case a.IsMulticast():
		return "a multicast"
	case a.Is4() && netip.MustParsePrefix("100.64.0.0/10").Contains(a):
		return "a shared (carrier-grade NAT)"
	}
	return "a special-purpose (not publicly routable)"
}

// privateHint is what a refusal adds, for the developer who meant it.
const privateHint = "webhooks are delivered to public addresses only (atp serve --allow-private-webhooks, Config.AllowPrivateWebhooks, allows others, for development)"

// refusedDial reports whether err is the dial-time check refusing the
// destination.
func refusedDial(err error) bool {
	return errors.Is(err, ssrf.ErrProhibitedIP) || errors.Is(err, ssrf.ErrProhibitedNetwork)
}

// dialTarget is the address a failed dial was for ("127.0.0.1:8080"), or
// "the destination".
func dialTarget(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Addr != nil {
		return oe.Addr.String()
	}
	return "the destination"
}
