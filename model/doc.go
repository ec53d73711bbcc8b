// Package model trains, exports and serves the reference pipeline's
// next-item recommender: an item-to-item model learnt from sessions,
// scored by ONNX Runtime.
//
// # The model
//
// Train groups each user's events into sessions (30-minute gap) and
// credits every item i with the items j that follow it within Window
// places, weighted 1/distance. Normalising each row gives T[i][j], an
// estimate of "j comes soon after i", kept for the VocabSize most frequent
// items (default 5000) and, per item, its Neighbours best successors
// (default 20). A user is scored from the record's recent items:
//
//	score(j) = sum over recent items i of HistoryWeight(p_i) * T[i][j]
//
// with p_i the item's position from the newest (weight 1/(1+p)), and the
// top k items with a score above 0 are returned. Popular returns the most
// frequent training items, the fallback for users without known items.
//
// # Why sparse neighbours, not a factorisation
//
// T is sparse: an item is followed by a handful of items. A truncated SVD
// (V x d and d x V factors) smears that over all items and needs d near V
// to recover it. Measured on the clickstream generator (500 users, 1,000
// products, 25,000 events, as in TestRanksTrueSuccessors; Go reference
// scoring of a user whose only recent item is X; is X's most likely true
// successor in the top 20?):
//
//	                               hit rate     hit rate weighted
//	                               (per item)   (by item frequency)
//	top-20 neighbours (this)        0.90         0.99
//	SVD d = 64                      0.69         0.80
//	SVD d = 128                     0.84         0.93
//	popularity (top 20 overall)     0.03         -
//
// The neighbour lists are also smaller: (V+1) x N int32 indices and float32
// weights, 8 bytes per entry, about 0.8 MB for V = 5000 and N = 20 against
// 2.6 MB for d = 64 factors (TestModelSizeAtFullVocabulary: 803 kB); and
// a user's L recent items touch L x N weights instead of a d x V product.
//
// # The ONNX graph
//
// model.onnx (IR version 8) takes items int64 [batch, history] (item
// indices, -1 or V for an empty slot), weights float32 [batch, history]
// and k int64 [1], and returns scores float32 [batch, kk] and indices int64
// [batch, kk], the top kk = min(k, candidates) items per row, best first;
// zero scores are fillers. Score caps k at MaxK = 100. The graph gathers
// each recent item's neighbour row, weights it, and must add up the
// contributions to the same item from different recent items. Two graphs
// do that (the Opset option):
//
//   - opset 16, the default: ScatterElements with reduction "add" into a
//     dense [batch, V+1] row, then TopK: Gather, Mul, ScatterElements, TopK.
//   - opset 13, for runtimes older than opset 16: opset 13 has no
//     scatter-add, so the graph sorts the candidates by item index (TopK
//     with k = L x N) and sums runs of equal indices with cumulative sums.
//     Sorting is most of its cost: three times slower.
//
// Both compute the same scores. The graph is deterministic in the training
// data and parameters: the version and creation time live in metadata.json
// only, so retraining on the same data reproduces model.onnx and its
// SHA-256.
//
// Measured on 2 cores (ONNX Runtime 1.24.3, one intra-op thread, V = 4980,
// N = 20, 20 recent items per user, k = 20; BenchmarkScoreSingle and
// BenchmarkScoreBatch64 run all three in one run):
//
//	                      1 user per call       64 users per call
//	ONNX, opset 13        46 us (22k users/s)   1.9 ms (34k users/s)
//	ONNX, opset 16        15 us (66k users/s)   0.47 ms (137k users/s)
//	Go (ScoreGo)          17 us (58k users/s)   0.86 ms (74k users/s)
//
// # Serving
//
// Save writes model.onnx, vocab.json and metadata.json (with model.onnx's
// SHA-256); Load verifies the checksum (and the one ExpectSHA256 pins),
// initialises ONNX Runtime once per process and returns a Loaded, a
// recommend.Scorer that scores a batch of records in one inference and is
// safe for concurrent use. Model.ScoreGo is the same scoring in plain Go,
// the reference the graph is tested against.
//
// ONNX Runtime is a shared library loaded at run time (cgo is required):
// `bash scripts/onnxruntime.sh` installs version 1.24.3 under
// ${AETHER_CACHE_DIR:-$HOME/.cache/aether}, where Load finds it;
// ONNXRUNTIME_SHARED_LIBRARY_PATH or RuntimeLibrary point elsewhere.
package model
