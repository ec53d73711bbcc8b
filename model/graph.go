package model

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	"github.com/aetherai/aether/model/onnxpb"
)

// The ONNX graph's format.
const (
	// IRVersion is the ONNX IR version of model.onnx.
	IRVersion = 8
	// DefaultOpset is the default-domain opset of model.onnx unless the
	// Opset option picks another (see Opset).
	DefaultOpset = 16

	// Names of the graph's inputs and outputs.
	InputItems    = "items"
	InputWeights  = "weights"
	InputK        = "k"
	OutputScores  = "scores"
	OutputIndices = "indices"
)

// encode builds the scoring graph for m.opset and stores its encoding and
// SHA-256. Both graphs share the contract of the package comment: inputs
// items int64 [batch, history] (-1 or V for an empty slot), weights float32
// [batch, history], k int64 [1]; outputs scores float32 [batch, kk] and
// indices int64 [batch, kk], best first, zero scores being fillers. Both
// start alike:
//
//	ids, w = Gather(nbr_ids, items), Gather(nbr_w, items)   [B, L, N]
//	c      = w * weights[:, :, None], flattened to            [B, M]
//
// and must then add up the contributions of equal ids (an item can follow
// several recent items).
func (m *Model) encode() error {
	v := len(m.vocab)
	g := &graph{}
	g.tensor("nbr_ids", onnxpb.TensorProto_INT32, []int64{int64(v + 1), int64(m.n)}, int32Bytes(m.nbrIdx))
	g.tensor("nbr_w", onnxpb.TensorProto_FLOAT, []int64{int64(v + 1), int64(m.n)}, float32Bytes(m.nbrW))
	g.int64s("c_axes2", []int64{1}, 2)
	g.int64s("c_flat", []int64{2}, 0, -1)
	g.int64s("c_0", []int64{1}, 0)
	g.int64s("c_1", []int64{1}, 1)

	// Candidates and their contributions, flattened to [B, M].
	g.node("Gather", []string{"nbr_ids", InputItems}, []string{"g_ids"}, intAttr("axis", 0))
	g.node("Gather", []string{"nbr_w", InputItems}, []string{"g_w"}, intAttr("axis", 0))
	g.node("Unsqueeze", []string{InputWeights, "c_axes2"}, []string{"u_w"})
	g.node("Mul", []string{"g_w", "u_w"}, []string{"contrib3"})
	g.node("Reshape", []string{"g_ids", "c_flat"}, []string{"ids"})
	g.node("Reshape", []string{"contrib3", "c_flat"}, []string{"contrib"})

	switch m.opset {
	case 13:
		g.sumBySorting()
	case 16:
		g.sumByScatter(v)
	default:
		return fmt.Errorf("model: no graph for opset %d", m.opset)
	}

	mp := &onnxpb.ModelProto{
		IrVersion:       proto.Int64(IRVersion),
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(int64(m.opset))}},
		ProducerName:    proto.String("aether/model"),
		ProducerVersion: proto.String(formatVersion),
		Domain:          proto.String("ai.aether"),
		DocString:       proto.String("Item-to-item next-item scorer: score(j) = sum_l weights[l] * T[items[l]][j] over each item's top neighbours; TopK of the scores."),
		Graph: &onnxpb.GraphProto{
			Name:        proto.String("itemcf"),
			Node:        g.nodes,
			Initializer: g.inits,
			Input: []*onnxpb.ValueInfoProto{
				valueInfo(InputItems, onnxpb.TensorProto_INT64, "batch", "history"),
				valueInfo(InputWeights, onnxpb.TensorProto_FLOAT, "batch", "history"),
				valueInfo(InputK, onnxpb.TensorProto_INT64, int64(1)),
			},
			Output: []*onnxpb.ValueInfoProto{
				valueInfo(OutputScores, onnxpb.TensorProto_FLOAT, "batch", "top"),
				valueInfo(OutputIndices, onnxpb.TensorProto_INT64, "batch", "top"),
			},
		},
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(mp)
	if err != nil {
		return fmt.Errorf("model: encoding the ONNX graph: %w", err)
	}
	sum := sha256.Sum256(b)
	m.onnx, m.sha256 = b, hex.EncodeToString(sum[:])
	return nil
}

// sumBySorting finishes the opset-13 graph, which has no scatter-add
// (ScatterElements with reduction is opset 16): it sorts the candidates by
// item index, sums each run of equal indices with a cumulative sum, and
// takes the TopK of the run totals:
//
//	sorted    = TopK(ids, M, ascending); c sorted along          [B, M]
//	start/end = sorted differs from its left/right neighbour
//	first     = position of each position's run start (NonZero of start,
//	            indexed by the run number CumSum(start))
//	total     = cs - cs[first] + c[first] with cs = CumSum(c), kept at ends
//	scores, p = TopK(total, min(k, M)); indices = sorted[p]
//
// Its cost is O(M log M) per user for M = L*N candidates, independent of
// V; the sort by index (ONNX Runtime's TopK with k = M) is most of it.
func (g *graph) sumBySorting() {
	g.int64s("c_2", []int64{1}, 2)
	g.int64s("c_m1", []int64{1}, -1)
	g.int64s("c_max", []int64{1}, math.MaxInt64)
	g.int64s("c_axis0", nil, 0)
	g.int64s("c_axis1", nil, 1)
	g.int64s("c_pad_front", []int64{4}, 0, 1, 0, 0)
	g.int64s("c_pad_back", []int64{4}, 0, 0, 0, 1)
	g.floats("c_f0", 0)
	g.int32s("c_im1", -1)

	g.node("Shape", []string{"ids"}, []string{"shape"})
	g.node("Slice", []string{"shape", "c_1", "c_2"}, []string{"m_vec"})

	// Sort candidates by item index; contributions follow.
	g.node("TopK", []string{"ids", "m_vec"}, []string{"sorted", "perm"},
		intAttr("axis", -1), intAttr("largest", 0), intAttr("sorted", 1))
	g.node("GatherElements", []string{"contrib", "perm"}, []string{"c_sorted"}, intAttr("axis", 1))
	g.node("CumSum", []string{"c_sorted", "c_axis1"}, []string{"cs"})

	// Runs of equal indices: starts and ends.
	g.node("Slice", []string{"sorted", "c_0", "c_m1", "c_1"}, []string{"head"})
	g.node("Pad", []string{"head", "c_pad_front", "c_im1"}, []string{"prev"})
	g.node("Equal", []string{"sorted", "prev"}, []string{"same_prev"})
	g.node("Not", []string{"same_prev"}, []string{"is_start"})
	g.node("Slice", []string{"sorted", "c_1", "c_max", "c_1"}, []string{"tail"})
	g.node("Pad", []string{"tail", "c_pad_back", "c_im1"}, []string{"next"})
	g.node("Equal", []string{"sorted", "next"}, []string{"same_next"})
	g.node("Not", []string{"same_next"}, []string{"is_end"})

	// Position of each run's start: NonZero lists the starts of all rows
	// in row-major order; a position's run number within its row plus the
	// number of runs in the rows above indexes that list.
	g.node("NonZero", []string{"is_start"}, []string{"nz"})
	g.node("Gather", []string{"nz", "c_axis1"}, []string{"start_cols"}, intAttr("axis", 0))
	g.node("Cast", []string{"is_start"}, []string{"start_i"}, intAttr("to", int64(onnxpb.TensorProto_INT64)))
	g.node("CumSum", []string{"start_i", "c_axis1"}, []string{"run1"})
	g.node("ReduceSum", []string{"start_i", "c_1"}, []string{"runs"}, intAttr("keepdims", 1))
	g.node("CumSum", []string{"runs", "c_axis0"}, []string{"runs_above"}, intAttr("exclusive", 1))
	g.node("Add", []string{"run1", "runs_above"}, []string{"run_flat1"})
	g.node("Sub", []string{"run_flat1", "c_1"}, []string{"run_flat"})
	g.node("Gather", []string{"start_cols", "run_flat"}, []string{"first"}, intAttr("axis", 0))

	// Run totals at run ends, then the top k.
	g.node("GatherElements", []string{"cs", "first"}, []string{"cs_first"}, intAttr("axis", 1))
	g.node("GatherElements", []string{"c_sorted", "first"}, []string{"c_first"}, intAttr("axis", 1))
	g.node("Sub", []string{"cs", "cs_first"}, []string{"total0"})
	g.node("Add", []string{"total0", "c_first"}, []string{"total"})
	g.node("Where", []string{"is_end", "total", "c_f0"}, []string{"run_total"})
	g.node("Min", []string{InputK, "m_vec"}, []string{"kk"})
	g.node("TopK", []string{"run_total", "kk"}, []string{OutputScores, "top_pos"},
		intAttr("axis", -1), intAttr("largest", 1), intAttr("sorted", 1))
	g.node("GatherElements", []string{"sorted", "top_pos"}, []string{"top_ids"}, intAttr("axis", 1))
	g.node("Cast", []string{"top_ids"}, []string{OutputIndices}, intAttr("to", int64(onnxpb.TensorProto_INT64)))
}

// sumByScatter finishes the opset-16 graph: the contributions are added
// into a dense [B, V+1] score matrix (column V, the padding item, stays 0)
// and TopK takes the best:
//
//	dense     = ScatterElements(zeros[B, V+1], ids, c, axis 1, reduction add)
//	scores, indices = TopK(dense, min(k, V+1))
//
// Its cost is O(M + V) per user: zeroing and scanning V floats dominate.
func (g *graph) sumByScatter(v int) {
	g.int64s("c_cols", []int64{1}, int64(v+1))

	g.node("Shape", []string{InputItems}, []string{"shape"})
	g.node("Slice", []string{"shape", "c_0", "c_1"}, []string{"b_vec"})
	g.node("Concat", []string{"b_vec", "c_cols"}, []string{"dense_shape"}, intAttr("axis", 0))
	g.node("ConstantOfShape", []string{"dense_shape"}, []string{"zeros"}, tensorAttr("value", &onnxpb.TensorProto{
		DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Dims: []int64{1}, FloatData: []float32{0},
	}))
	g.node("ScatterElements", []string{"zeros", "ids", "contrib"}, []string{"dense"},
		intAttr("axis", 1), stringAttr("reduction", "add"))
	g.node("Min", []string{InputK, "c_cols"}, []string{"kk"})
	g.node("TopK", []string{"dense", "kk"}, []string{OutputScores, OutputIndices},
		intAttr("axis", -1), intAttr("largest", 1), intAttr("sorted", 1))
}

type graph struct {
	nodes []*onnxpb.NodeProto
	inits []*onnxpb.TensorProto
}

func (g *graph) node(op string, in, out []string, attrs ...*onnxpb.AttributeProto) {
	g.nodes = append(g.nodes, &onnxpb.NodeProto{
		Name:      proto.String(fmt.Sprintf("%s_%d", op, len(g.nodes))),
		OpType:    proto.String(op),
		Input:     in,
		Output:    out,
		Attribute: attrs,
	})
}

func (g *graph) tensor(name string, typ onnxpb.TensorProto_DataType, dims []int64, raw []byte) {
	g.inits = append(g.inits, &onnxpb.TensorProto{
		Name: proto.String(name), DataType: proto.Int32(int32(typ)), Dims: dims, RawData: raw,
	})
}

// int64s adds an int64 constant; nil dims make a scalar.
func (g *graph) int64s(name string, dims []int64, vals ...int64) {
	g.inits = append(g.inits, &onnxpb.TensorProto{
		Name: proto.String(name), DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Dims: dims, Int64Data: vals,
	})
}

// int32s adds an int32 scalar constant.
func (g *graph) int32s(name string, val int32) {
	g.inits = append(g.inits, &onnxpb.TensorProto{
		Name: proto.String(name), DataType: proto.Int32(int32(onnxpb.TensorProto_INT32)), Int32Data: []int32{val},
	})
}

// floats adds a float32 scalar constant.
func (g *graph) floats(name string, val float32) {
	g.inits = append(g.inits, &onnxpb.TensorProto{
		Name: proto.String(name), DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), FloatData: []float32{val},
	})
}

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{
		Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v),
	}
}

func stringAttr(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{
		Name: proto.String(name), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(v),
	}
}

func tensorAttr(name string, v *onnxpb.TensorProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{
		Name: proto.String(name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: v,
	}
}

// valueInfo describes a tensor; dims are int64 sizes or string parameters.
func valueInfo(name string, typ onnxpb.TensorProto_DataType, dims ...any) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		switch d := d.(type) {
		case int64:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}
		case string:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(typ)), Shape: shape,
		}}},
	}
}

func int32Bytes(v []int32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return b
}

func float32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}
