package clickstream

import (
	"strconv"
	"strings"

	"github.com/aetherai/aether/event"
)

// Ways a record can be malformed. Each produces bytes that either fail
// json.Unmarshal into event.Event or decode to an event that fails
// event.Validate.
const (
	malTruncated   = iota // a proper prefix of the JSON encoding
	malTimeNumber         // "timestamp":1767225600000 (not a string)
	malUserNumber         // "userId":17 (not a string)
	malTypeNumber         // "eventType":1 (not a string)
	malMissing            // userId, productId, eventType or timestamp left out
	malUnknownType        // "eventType":"scroll"
	malNotJSON            // form-encoded text
	malLongProduct        // productId longer than event.MaxIDLen
	malVariants
)

// malformed returns garbage bytes derived from e.
func (g *Generator) malformed(e *event.Event) []byte {
	b := g.scratch[:0]
	switch g.rng.IntN(malVariants) {
	case malTruncated:
		b = appendEvent(b, e, 0)
		b = b[:1+g.rng.IntN(len(b)-1)]
	case malTimeNumber:
		b = appendEvent(b, e, omitTime)
		b = append(b[:len(b)-1], `,"timestamp":`...)
		b = strconv.AppendInt(b, e.Timestamp.UnixMilli(), 10)
		b = append(b, '}')
	case malUserNumber:
		b = appendEvent(b, e, omitUser)
		b = append(b[:len(b)-1], `,"userId":`...)
		b = append(b, strings.TrimPrefix(e.UserID, "user_")...)
		b = append(b, '}')
	case malTypeNumber:
		b = appendEvent(b, e, omitType)
		b = append(b[:len(b)-1], `,"eventType":`...)
		b = strconv.AppendInt(b, int64(e.EventType.Index()), 10)
		b = append(b, '}')
	case malMissing:
		b = appendEvent(b, e, 1<<g.rng.IntN(4))
	case malUnknownType:
		bad := *e
		bad.EventType = "scroll"
		b = appendEvent(b, &bad, 0)
	case malNotJSON:
		b = append(b, "userId="...)
		b = append(b, e.UserID...)
		b = append(b, "&productId="...)
		b = append(b, e.ProductID...)
		b = append(b, "&eventType="...)
		b = append(b, e.EventType...)
	default: // malLongProduct
		bad := *e
		bad.ProductID = e.ProductID + "_" + strings.Repeat("x", event.MaxIDLen)
		b = appendEvent(b, &bad, 0)
	}
	g.scratch = b
	return append([]byte(nil), b...)
}
