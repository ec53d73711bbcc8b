package codec_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/codec"
)

type item struct {
	ID    string `json:"id"`
	Count int    `json:"count"`
}

func TestJSONRoundTripAndErrors(t *testing.T) {
	c := codec.JSON[item]()
	b, err := c.Encode(item{"a", 2})
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"a","count":2}`, string(b))
	v, err := c.Decode(b)
	require.NoError(t, err)
	require.Equal(t, item{"a", 2}, v)
	_, err = c.Decode([]byte(`{"id":"a","count":"two"}`))
	require.ErrorContains(t, err, "cannot unmarshal string")
	require.Equal(t, "json<codec_test.item>", codec.ID(c))
}

func TestGokaAdapterChecksTheType(t *testing.T) {
	g := codec.Goka(codec.JSON[item]())
	b, err := g.Encode(item{"x", 1})
	require.NoError(t, err)
	v, err := g.Decode(b)
	require.NoError(t, err)
	require.Equal(t, item{"x", 1}, v)
	_, err = g.Encode("not an item")
	require.EqualError(t, err, "codec json<codec_test.item>: cannot encode string")
}

func TestBytesAndString(t *testing.T) {
	b, _ := codec.Bytes().Encode([]byte{1, 2})
	require.Equal(t, []byte{1, 2}, b)
	s, _ := codec.String().Decode([]byte("hé"))
	require.Equal(t, "hé", s)
	require.Equal(t, "string<string>", codec.ID(codec.String()))
}
