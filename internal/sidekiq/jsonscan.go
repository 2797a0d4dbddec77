package sidekiq

// The JSON scanner: no Sidekiq knowledge here, only bytes.

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// The work hashes of a large fleet hold tens of thousands of job payloads, and reflection-based
// encoding/json spent most of a snapshot's time on them. The scanner below reads the top-level
// members of one JSON object without reflection; nested values are skipped (and checked for
// balance) and handed back as raw bytes. FuzzDecodeWork and FuzzDecodePayload compare it with
// encoding/json.

// errJSON is a malformed JSON object.
var errJSON = errors.New("malformed JSON object")

// eachMember calls fn for each top-level member of the JSON object in data, with the key
// (unquoted; a view of data when it has no escapes) and the raw value. It rejects anything that is not one well-formed
// object, apart from not validating the inside of strings and numbers.
func eachMember(data []byte, fn func(key, val []byte) error) error {
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return errJSON
	}
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		if skipWS(data, i+1) != len(data) {
			return errJSON
		}
		return nil
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return errJSON
		}
		kend, err := skipString(data, i)
		if err != nil {
			return err
		}
		key := data[i+1 : kend-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			k, ok := jsonStrBytes(data[i:kend])
			if !ok {
				return errJSON
			}
			key = k
		}
		i = skipWS(data, kend)
		if i >= len(data) || data[i] != ':' {
			return errJSON
		}
		i = skipWS(data, i+1)
		vend, err := skipValue(data, i, 0)
		if err != nil {
			return err
		}
		if err := fn(key, data[i:vend]); err != nil {
			return err
		}
		i = skipWS(data, vend)
		if i >= len(data) {
			return errJSON
		}
		switch data[i] {
		case ',':
			i = skipWS(data, i+1)
		case '}':
			if skipWS(data, i+1) != len(data) {
				return errJSON
			}
			return nil
		default:
			return errJSON
		}
	}
}

func skipWS(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string starting at data[i] == '"'. Control
// characters inside are not rejected (a lenient reader).
func skipString(data []byte, i int) (int, error) {
	j := i + 1
	for {
		k := bytes.IndexByte(data[j:], '"')
		if k < 0 {
			return 0, errJSON
		}
		q := j + k
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for b := q - 1; b > i && data[b] == '\\'; b-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, nil
		}
		j = q + 1
	}
}

// skipValue returns the index after the JSON value starting at data[i].
func skipValue(data []byte, i, depth int) (int, error) {
	if depth > 100 {
		return 0, errJSON
	}
	if i >= len(data) {
		return 0, errJSON
	}
	switch c := data[i]; {
	case c == '"':
		return skipString(data, i)
	case c == '{' || c == '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		j := skipWS(data, i+1)
		if j < len(data) && data[j] == closing {
			return j + 1, nil
		}
		for {
			if c == '{' {
				if j >= len(data) || data[j] != '"' {
					return 0, errJSON
				}
				kend, err := skipString(data, j)
				if err != nil {
					return 0, err
				}
				j = skipWS(data, kend)
				if j >= len(data) || data[j] != ':' {
					return 0, errJSON
				}
				j = skipWS(data, j+1)
			}
			end, err := skipValue(data, j, depth+1)
			if err != nil {
				return 0, err
			}
			j = skipWS(data, end)
			if j >= len(data) {
				return 0, errJSON
			}
			if data[j] == closing {
				return j + 1, nil
			}
			if data[j] != ',' {
				return 0, errJSON
			}
			j = skipWS(data, j+1)
		}
	case c == '-' || c >= '0' && c <= '9':
		j := i + 1
		for j < len(data) && (data[j] >= '0' && data[j] <= '9' || data[j] == '.' || data[j] == 'e' || data[j] == 'E' || data[j] == '+' || data[j] == '-') {
			j++
		}
		return j, nil
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if len(data)-i >= len(lit) && string(data[i:i+len(lit)]) == lit {
				return i + len(lit), nil
			}
		}
		return 0, errJSON
	}
}

// jsonStr decodes a raw JSON string token; ok is false when raw is not a string.
func jsonStr(raw []byte) (string, bool) {
	b, ok := jsonStrBytes(raw)
	return string(b), ok
}

// jsonStrBytes decodes a raw JSON string token into new bytes (or a sub-slice of raw when
// there is nothing to unescape).
func jsonStrBytes(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		if !utf8Valid(body) {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return nil, false
			}
			return []byte(s), true
		}
		return body, true
	}
	out := make([]byte, 0, len(body))
	for len(body) > 0 {
		k := bytes.IndexByte(body, '\\')
		if k < 0 {
			out = append(out, body...)
			break
		}
		out = append(out, body[:k]...)
		if k+1 >= len(body) {
			return nil, false
		}
		switch body[k+1] {
		case '"', '\\', '/':
			out = append(out, body[k+1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			// Rare in payloads: let encoding/json handle \u escapes and surrogate pairs.
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return nil, false
			}
			return []byte(s), true
		default:
			return nil, false
		}
		body = body[k+2:]
	}
	if !utf8Valid(out) {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, false
		}
		return []byte(s), true
	}
	return out, true
}

func utf8Valid(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return utf8.Valid(b)
		}
	}
	return true
}

// readOnlyBytes views s as bytes without copying, for the scanner, which only reads them;
// nothing derived from the view may be kept (copy first), since s's memory is immutable.
func readOnlyBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// unquoteAt unescapes the JSON string starting at data[i] == '"' into new bytes and returns
// the index after its closing quote. ok is false for what it leaves to encoding/json (\u
// escapes, bytes outside ASCII that are not valid UTF-8) and for malformed strings.
func unquoteAt(data []byte, i int) (out []byte, end int, ok bool) {
	body := data[i+1:]
	out = make([]byte, len(body))
	n := 0
	var high byte
	for j := 0; j < len(body); j++ {
		c := body[j]
		switch c {
		case '"':
			out = out[:n:n]
			if high >= 0x80 && !utf8.Valid(out) {
				return nil, 0, false
			}
			return out, i + 1 + j + 1, true
		case '\\':
			j++
			if j >= len(body) {
				return nil, 0, false
			}
			switch body[j] {
			case '"', '\\', '/':
				c = body[j]
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			default:
				return nil, 0, false
			}
		}
		high |= c
		out[n] = c
		n++
	}
	return nil, 0, false
}

// jsonInt reads a JSON number (or a numeric string) as an int.
func jsonInt(raw []byte) (int, bool) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	if n, err := strconv.Atoi(s); err == nil {
		return n, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int(f), true
	}
	return 0, false
}
