package api

import (
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
)

// getRecommendations answers the user's top k items (k from ?k=, default
// DefaultK, 1 to MaxK):
//
//   - from the cache if it holds at least k items for the user (truncated
//     to k), source "cache";
//   - else, if the feature store has the user's record, from the model,
//     stored in the cache, source "inference";
//   - else the most popular items, not cached, source "fallback".
//
// A failing cache read is served as a miss and a failing cache write is
// only logged (both counted in aether_api_cache_errors_total); a failing
// feature store or model is a 503.
func (s *Server) getRecommendations(w http.ResponseWriter, r *http.Request) {
	userID, ok := s.pathUserID(w, r)
	if !ok {
		return
	}
	k, ok := s.queryK(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	ri := infoFrom(ctx)
	// The stores know the user by key; the answer names the user as asked.
	key := s.storeKey(userID)
	cached, hit, err := s.cache.Get(ctx, key)
	switch {
	case err != nil:
		s.metrics.cacheErrors.WithLabelValues("get").Inc()
		s.log.LogAttrs(ctx, slog.LevelWarn, "recommendation cache read failed; serving as a miss",
			slog.String("request_id", ri.id), slog.String("error", err.Error()))
	case hit && cached.UserID != key:
		// Never serve another user's answer, whatever the cache did.
		s.log.LogAttrs(ctx, slog.LevelError, "recommendation cache returned an entry of another user; serving as a miss",
			slog.String("request_id", ri.id))
	case hit && len(cached.Items) >= k:
		cached.Items = cached.Items[:k]
		cached.Source = recommend.FromCache
		cached.UserID = userID
		s.answer(w, ri, cached)
		return
	}

	rec, found, err := s.features.Get(key)
	if err != nil {
		s.unavailable(w, r, "feature store", err)
		return
	}
	if !found {
		s.answer(w, ri, recommend.Recommendations{
			UserID:      userID,
			Items:       firstK(s.scorer.Popular(k), k),
			Model:       s.scorer.Model(),
			Source:      recommend.FromFallback,
			GeneratedAt: s.now().UTC(),
		})
		return
	}
	out, models, err := recommend.ScoreWithModel(ctx, s.scorer, []features.Record{rec}, k)
	if err != nil {
		s.unavailable(w, r, "model", err)
		return
	}
	if len(out) != 1 || len(models) != 1 || !finite(out[0]) {
		s.log.LogAttrs(ctx, slog.LevelError, "scorer returned an invalid answer",
			slog.String("request_id", ri.id), slog.Int("answers", len(out)))
		s.reject(w, r, http.StatusInternalServerError, reasonInternal, "internal error: the model returned an invalid answer")
		return
	}
	answer := recommend.Recommendations{
		UserID:      key,
		Items:       firstK(out[0], k),
		Model:       models[0],
		Source:      recommend.FromInference,
		GeneratedAt: s.now().UTC(),
	}
	err = s.cache.Put(ctx, answer)
	answer.UserID = userID
	if err != nil {
		s.metrics.cacheErrors.WithLabelValues("put").Inc()
		s.log.LogAttrs(ctx, slog.LevelWarn, "recommendation cache write failed",
			slog.String("request_id", ri.id), slog.String("error", err.Error()))
	}
	s.answer(w, ri, answer)
}

// answer writes rec and notes, for the audit trail, which model made it
// and how.
func (s *Server) answer(w http.ResponseWriter, ri *requestInfo, rec recommend.Recommendations) {
	ri.answer = &answerInfo{source: rec.Source, model: rec.Model}
	s.metrics.answers[rec.Source].Inc()
	WriteJSON(w, http.StatusOK, rec)
}

// getFeatures answers the user's feature record, or 404 if the feature
// store has none.
func (s *Server) getFeatures(w http.ResponseWriter, r *http.Request) {
	userID, ok := s.pathUserID(w, r)
	if !ok {
		return
	}
	key := s.storeKey(userID)
	rec, found, err := s.features.Get(key)
	switch {
	case err != nil:
		s.unavailable(w, r, "feature store", err)
	case !found:
		s.reject(w, r, http.StatusNotFound, reasonNoFeatures, "no features for this user")
	case rec.UserID != "" && rec.UserID != key:
		s.log.LogAttrs(r.Context(), slog.LevelError, "feature store returned the record of another user",
			slog.String("request_id", infoFrom(r.Context()).id))
		s.reject(w, r, http.StatusInternalServerError, reasonInternal, "internal error")
	default:
		rec.UserID = userID
		WriteJSON(w, http.StatusOK, rec)
	}
}

// unavailable answers 503 for a failing dependency, logging its error
// (which is not shown to the client).
func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.LogAttrs(r.Context(), slog.LevelError, what+" failed",
		slog.String("request_id", infoFrom(r.Context()).id), slog.String("error", err.Error()))
	s.reject(w, r, http.StatusServiceUnavailable, reasonUnavailable, "the "+what+" is unavailable: retry later")
}

// pathUserID returns the {userId} path value if it is a valid user id: 1
// to event.MaxIDLen bytes of UTF-8 without control characters, the rule
// events follow.
func (s *Server) pathUserID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("userId")
	msg := ""
	switch {
	case id == "":
		msg = "userId is required"
	case len(id) > event.MaxIDLen:
		msg = "invalid userId: longer than " + strconv.Itoa(event.MaxIDLen) + " bytes"
	case !event.Printable(id):
		msg = "invalid userId: contains control characters or invalid UTF-8"
	default:
		return id, true
	}
	s.reject(w, r, http.StatusBadRequest, reasonInvalidUserID, msg)
	return "", false
}

// queryK returns ?k=, DefaultK if absent.
func (s *Server) queryK(w http.ResponseWriter, r *http.Request) (int, bool) {
	v, given := r.URL.Query()["k"]
	if !given {
		return s.defK, true
	}
	k, err := strconv.Atoi(v[0])
	if err != nil || k < 1 || k > s.maxK {
		s.reject(w, r, http.StatusBadRequest, reasonInvalidK, "k must be an integer from 1 to "+strconv.Itoa(s.maxK))
		return 0, false
	}
	return k, true
}

// firstK returns items cut to k, never nil (an empty list is [] in JSON).
func firstK(items []recommend.Item, k int) []recommend.Item {
	if len(items) > k {
		return items[:k]
	}
	if items == nil {
		return []recommend.Item{}
	}
	return items
}

func finite(items []recommend.Item) bool {
	for _, it := range items {
		if f := float64(it.Score); math.IsNaN(f) || math.IsInf(f, 0) {
			return false
		}
	}
	return true
}
