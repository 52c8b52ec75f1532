package annotations

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// maxValue bounds every annotation value we parse.
const maxValue = 4096

func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errors.New(`must be "true" or "false"`)
}

func parseInt(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, errors.New("must be an integer")
	}
	return n, nil
}

func vBool(v string) error { _, err := parseBool(v); return err }

func vInt(lo, hi int) func(string) error {
	return func(v string) error {
		n, err := parseInt(v)
		if err != nil {
			return err
		}
		if n < lo || n > hi {
			return fmt.Errorf("must be between %d and %d", lo, hi)
		}
		return nil
	}
}

func vEnum(values ...string) func(string) error {
	return func(v string) error {
		if slices.Contains(values, strings.TrimSpace(v)) {
			return nil
		}
		return fmt.Errorf("must be one of %s", strings.Join(values, ", "))
	}
}

func vToken(v string) error {
	if !snapshot.ValidToken(strings.TrimSpace(v)) {
		return errors.New("must be a header or cookie name (an RFC 9110 token)")
	}
	return nil
}

// vText accepts printable text up to maxValue bytes (control characters are
// refused for every annotation before validators run).
func vText(v string) error {
	if len(v) > maxValue {
		return fmt.Errorf("longer than %d bytes", maxValue)
	}
	return nil
}

func vList(each func(string) error) func(string) error {
	return func(v string) error {
		if err := vText(v); err != nil {
			return err
		}
		items := splitList(v)
		if len(items) == 0 {
			return errors.New("is empty")
		}
		for _, it := range items {
			if err := each(it); err != nil {
				return fmt.Errorf("%q: %w", it, err)
			}
		}
		return nil
	}
}

func vRegex(v string) error {
	if err := vText(v); err != nil {
		return err
	}
	if _, err := regexp.Compile(v); err != nil {
		return fmt.Errorf("not a valid RE2 regular expression: %w", err)
	}
	return nil
}

// vPath accepts an absolute URL path without spaces or quotes.
func vPath(v string) error {
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, " \"'\\") || len(v) > maxValue {
		return errors.New("must be a path starting with '/', without spaces or quotes")
	}
	return nil
}

// vRewriteTarget accepts a path that may start with a capture reference.
func vRewriteTarget(v string) error {
	v = strings.TrimSpace(v)
	if v == "" || !strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "$") || strings.ContainsAny(v, " \"'\\") || len(v) > maxValue {
		return errors.New("must be a path starting with '/' or '$', without spaces or quotes")
	}
	for i := 0; i+1 < len(v); i++ {
		if v[i] == '$' && !('0' <= v[i+1] && v[i+1] <= '9' || v[i+1] == '{') {
			return errors.New("only $0..$9 and ${n} capture references are supported, not nginx variables")
		}
	}
	return nil
}

func vURL(v string) error { return snapshot.ValidRedirectURL(strings.TrimSpace(v)) }

func vHost(v string) error { return snapshot.ValidHost(strings.ToLower(strings.TrimSpace(v)), false) }

// vHostPort accepts host or host:port.
func vHostPort(v string) error {
	v = strings.TrimSpace(v)
	if h, p, ok := strings.Cut(v, ":"); ok {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("port must be 1..65535")
		}
		v = h
	}
	return vHost(v)
}

// parseCIDR accepts an address or a prefix and returns the masked prefix.
func parseCIDR(v string) (netip.Prefix, error) {
	v = strings.TrimSpace(v)
	if p, err := netip.ParsePrefix(v); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, errors.New("not an IP address or CIDR")
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func vCIDR(v string) error { _, err := parseCIDR(v); return err }

// parseSize reads an nginx size: bytes, or a number with k, m or g
// (case-insensitive, powers of 1024).
func parseSize(v string) (int64, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	mult := int64(1)
	switch {
	case strings.HasSuffix(v, "k"):
		mult, v = 1<<10, v[:len(v)-1]
	case strings.HasSuffix(v, "m"):
		mult, v = 1<<20, v[:len(v)-1]
	case strings.HasSuffix(v, "g"):
		mult, v = 1<<30, v[:len(v)-1]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mult {
		return 0, errors.New("must be an nginx size such as 8m, 512k or 0 (unlimited)")
	}
	return n * mult, nil
}

func vSize(v string) error { _, err := parseSize(v); return err }

// splitList splits on commas, trims, and drops empty items.
func splitList(v string) []string {
	var out []string
	for _, it := range strings.Split(v, ",") {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}
