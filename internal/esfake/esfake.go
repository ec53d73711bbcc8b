// Package esfake is an in-process fake of the Elasticsearch 7.17 HTTP API,
// for tests: the subset olivere/elastic/v7 uses for indexing, bulk,
// search, delete by query, index templates and ILM policies, with real
// Elasticsearch error types and near-real-time search (documents become
// searchable at a refresh, as in Elasticsearch). Faults are injectable at
// run time: per-item bulk rejections, authentication and authorisation
// failures, server errors, latency and a full outage on the same address.
//
// What it does not model: text analysis (every string is a keyword),
// scoring (hits come in sort order, or by index and insertion), shards,
// aliases and automatic periodic refresh.
package esfake

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version is the Elasticsearch version the fake reports.
const Version = "7.17.18"

// maxResultWindow is Elasticsearch's default index.max_result_window.
const maxResultWindow = 10000

// Server is a fake Elasticsearch node. It is safe for concurrent use.
type Server struct {
	mu      sync.Mutex
	http    *httptest.Server
	addr    string
	stopped chan struct{} // closed while the node is down, to cut latency sleeps short

	indices   map[string]*index
	templates map[string]json.RawMessage // index templates by name, as put
	policies  map[string]policy
	seqNo     int64
	autoID    int64

	faults faults
	stats  Stats
}

type policy struct {
	body     json.RawMessage
	version  int
	modified time.Time
}

type faults struct {
	user, password string // basic auth required when user != ""
	forbidden      bool
	failRequests   int // the next N requests fail with failStatus
	failStatus     int
	rejectItems    int // the next N bulk items are rejected with rejectStatus
	rejectStatus   int
	rejectFraction float64 // each bulk item is rejected with this probability
	fractionStatus int
	latency        time.Duration
	rng            *rand.Rand
}

// Stats counts what the node was asked to do.
type Stats struct {
	Requests        int            // every HTTP request that reached the handler
	BulkRequests    int            // _bulk requests
	BulkItems       int            // bulk items, including rejected ones
	RejectedItems   int            // bulk items rejected by an injected fault
	Searches        int            // _search requests
	Counts          int            // _count requests
	DeleteByQueries int            // _delete_by_query requests
	Queries         map[string]int // _search, _count and _delete_by_query per concrete index
}

type index struct {
	name     string
	created  time.Time
	settings map[string]any // flat "index.x.y" keys
	mappings map[string]any
	live     map[string]*doc // what GET by id sees
	searched map[string]*doc // what search sees: live at the last refresh
}

type doc struct {
	id      string
	source  json.RawMessage
	parsed  map[string]any
	version int64
	seqNo   int64
	ord     int64 // insertion order, for hits without a sort
}

// New starts a node on a random loopback port.
func New() *Server {
	s := &Server{
		indices:   map[string]*index{},
		templates: map[string]json.RawMessage{},
		policies:  map[string]policy{},
	}
	s.faults.rng = rand.New(rand.NewPCG(1, 2))
	s.stats.Queries = map[string]int{}
	s.http = httptest.NewServer(http.HandlerFunc(s.serve))
	s.addr = s.http.Listener.Addr().String()
	s.stopped = make(chan struct{})
	return s
}

// URL is the node's base URL, the same across Stop and Start.
func (s *Server) URL() string { return "http://" + s.addr }

// Close shuts the node down for good.
func (s *Server) Close() {
	s.Stop()
}

// Stop simulates a full outage: the listener is closed, so new connections
// are refused, and open connections are cut. Data is kept.
func (s *Server) Stop() {
	s.mu.Lock()
	h := s.http
	s.http = nil
	if h != nil {
		close(s.stopped)
	}
	s.mu.Unlock()
	if h != nil {
		h.CloseClientConnections()
		h.Close()
	}
}

// Start brings a stopped node back on the same address.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.http != nil {
		return nil
	}
	var ln net.Listener
	var err error
	for range 50 { // the port may take a moment to be free again
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("esfake: restarting on %s: %w", s.addr, err)
	}
	h := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	h.Listener.Close()
	h.Listener = ln
	h.Start()
	s.http = h
	s.stopped = make(chan struct{})
	return nil
}

// Outage stops the node now and starts it again after d, in the
// background. The returned channel is closed once it is back.
func (s *Server) Outage(d time.Duration) <-chan struct{} {
	s.Stop()
	back := make(chan struct{})
	go func() {
		defer close(back)
		time.Sleep(d)
		if err := s.Start(); err != nil {
			panic(err)
		}
	}()
	return back
}

// RequireBasicAuth makes every request need these credentials; an empty
// user turns authentication off.
func (s *Server) RequireBasicAuth(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.user, s.faults.password = user, password
}

// Forbid makes every authenticated request fail with 403.
func (s *Server) Forbid(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.forbidden = on
}

// FailRequests makes the next n requests fail with status (a 5xx, say).
func (s *Server) FailRequests(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.failRequests, s.faults.failStatus = n, status
}

// RejectBulkItems makes the next n bulk items fail with status (429 or
// 503), as a node under pressure does; the rest of their request succeeds.
func (s *Server) RejectBulkItems(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.rejectItems, s.faults.rejectStatus = n, status
}

// RejectBulkFraction rejects each bulk item with probability f (0 turns
// it off), drawn from a generator seeded by seed so runs repeat.
func (s *Server) RejectBulkFraction(f float64, status int, seed uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.rejectFraction, s.faults.fractionStatus = f, status
	s.faults.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// SetLatency delays every response by d.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.latency = d
}

// ClearFaults removes every injected fault, authentication included.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	rng := s.faults.rng
	s.faults = faults{rng: rng}
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Queries = make(map[string]int, len(s.stats.Queries))
	for k, v := range s.stats.Queries {
		st.Queries[k] = v
	}
	return st
}

// Indices lists the existing indices, sorted.
func (s *Server) Indices() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.indices {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Source returns a document's stored _source as GET sees it, for tests
// that tamper with or inspect documents directly.
func (s *Server) Source(indexName, id string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.indices[indexName]
	if ix == nil || ix.live[id] == nil {
		return nil, false
	}
	return bytes.Clone(ix.live[id].source), true
}

// esError is an Elasticsearch error response.
type esError struct {
	status int
	typ    string
	reason string
	extra  map[string]any // more fields of the error object (index, resource.id, ...)
}

func (e *esError) body() map[string]any {
	cause := map[string]any{"type": e.typ, "reason": e.reason}
	for k, v := range e.extra {
		cause[k] = v
	}
	obj := map[string]any{"root_cause": []any{cause}}
	for k, v := range cause {
		obj[k] = v
	}
	return map[string]any{"error": obj, "status": e.status}
}

func errorf(status int, typ, format string, args ...any) *esError {
	return &esError{status: status, typ: typ, reason: fmt.Sprintf(format, args...)}
}

func indexNotFound(name string) *esError {
	return &esError{status: 404, typ: "index_not_found_exception", reason: "no such index [" + name + "]",
		extra: map[string]any{"index": name, "resource.type": "index_or_alias", "resource.id": name, "index_uuid": "_na_"}}
}

// serve authenticates, applies faults, then routes.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	body, err := readBody(r)
	if err != nil {
		writeError(w, errorf(400, "parse_exception", "request body is required"))
		return
	}
	s.mu.Lock()
	s.stats.Requests++
	f := &s.faults
	latency, stopped := f.latency, s.stopped
	var fault *esError
	switch {
	case f.user != "" && !authOK(r, f.user, f.password):
		fault = authError(r, f.user)
	case f.forbidden:
		u, _, _ := r.BasicAuth()
		fault = errorf(403, "security_exception", "action [%s] is unauthorized for user [%s]", actionName(r), u)
	case f.failRequests > 0:
		f.failRequests--
		fault = errorf(f.failStatus, statusType(f.failStatus), "injected failure")
	}
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-stopped:
		case <-r.Context().Done():
		}
	}
	if fault != nil {
		if fault.status == 401 {
			w.Header().Set("WWW-Authenticate", `Basic realm="security" charset="UTF-8"`)
		}
		writeError(w, fault)
		return
	}
	status, resp := s.route(r, body)
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	if e, ok := resp.(*esError); ok {
		writeError(w, e)
		return
	}
	writeJSON(w, status, resp)
}

func readBody(r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(r.Body)
	return buf.Bytes(), err
}

func authOK(r *http.Request, user, password string) bool {
	u, p, ok := r.BasicAuth()
	return ok && u == user && p == password
}

func authError(r *http.Request, user string) *esError {
	u, _, ok := r.BasicAuth()
	if !ok {
		return errorf(401, "security_exception", "missing authentication credentials for REST request [%s]", r.URL.Path)
	}
	return errorf(401, "security_exception", "unable to authenticate user [%s] for REST request [%s]", u, r.URL.Path)
}

func actionName(r *http.Request) string {
	switch {
	case strings.Contains(r.URL.Path, "_bulk"):
		return "indices:data/write/bulk"
	case strings.Contains(r.URL.Path, "_search"):
		return "indices:data/read/search"
	}
	return "cluster:monitor/main"
}

func statusType(status int) string {
	switch status {
	case 429:
		return "es_rejected_execution_exception"
	case 503:
		return "unavailable_shards_exception"
	case 504:
		return "timeout_exception"
	}
	return "internal_server_error"
}

func writeError(w http.ResponseWriter, e *esError) {
	writeJSON(w, e.status, e.body())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// route dispatches a request; it returns an *esError or a response body.
func (s *Server) route(r *http.Request, body []byte) (int, any) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if parts[0] == "" {
		parts = nil
	}
	q := r.URL.Query()
	m := r.Method
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(parts) == 0 && (m == "GET" || m == "HEAD"):
		return 200, s.info()
	case len(parts) >= 1 && parts[0] == "_bulk" && (m == "POST" || m == "PUT"):
		return s.bulk("", body, q)
	case len(parts) == 2 && parts[1] == "_bulk" && (m == "POST" || m == "PUT"):
		return s.bulk(parts[0], body, q)
	case len(parts) == 3 && parts[0] == "_ilm" && parts[1] == "policy":
		return s.ilm(m, parts[2], body)
	case len(parts) == 2 && parts[0] == "_index_template":
		return s.indexTemplate(m, parts[1], body)
	case len(parts) == 1 && parts[0] == "_refresh" && (m == "POST" || m == "GET"):
		return s.refreshAll("*")
	case len(parts) == 1 && parts[0] == "_search" && (m == "POST" || m == "GET"):
		return s.search("*", body, q)
	case len(parts) == 1 && strings.HasPrefix(parts[0], "_"):
		return 400, errorf(400, "invalid_index_name_exception", "Invalid index name [%s], must not start with '_'", parts[0])
	case len(parts) == 1:
		return s.indexOp(m, parts[0], body)
	case len(parts) == 2 && parts[1] == "_refresh" && (m == "POST" || m == "GET"):
		return s.refreshAll(parts[0])
	case len(parts) == 2 && parts[1] == "_count" && (m == "POST" || m == "GET"):
		return s.count(parts[0], body)
	case len(parts) == 2 && parts[1] == "_search" && (m == "POST" || m == "GET"):
		return s.search(parts[0], body, q)
	case len(parts) == 2 && parts[1] == "_delete_by_query" && m == "POST":
		return s.deleteByQuery(parts[0], body, q)
	case len(parts) == 2 && parts[1] == "_mapping" && m == "GET":
		return s.getIndex(parts[0], true)
	case len(parts) == 2 && parts[1] == "_doc" && m == "POST":
		s.autoID++
		return s.putDoc(parts[0], fmt.Sprintf("fake-%d", s.autoID), body, q, true)
	case len(parts) == 3 && (parts[1] == "_doc" || parts[1] == "_create"):
		id := parts[2]
		switch m {
		case "PUT", "POST":
			if parts[1] == "_create" {
				q.Set("op_type", "create")
			}
			return s.putDoc(parts[0], id, body, q, false)
		case "GET", "HEAD":
			return s.getDoc(parts[0], id)
		case "DELETE":
			return s.deleteDoc(parts[0], id, q)
		}
	case len(parts) == 3 && parts[1] == "_update" && m == "POST":
		return s.update(parts[0], parts[2], body, q)
	}
	return 405, errorf(405, "illegal_argument_exception", "Incorrect HTTP method for uri [%s] and method [%s]", r.URL.Path, m)
}

func (s *Server) info() map[string]any {
	return map[string]any{
		"name": "esfake", "cluster_name": "esfake", "cluster_uuid": "esfake-cluster-uuid",
		"version": map[string]any{
			"number": Version, "build_flavor": "default", "build_type": "docker",
			"build_hash": "esfake", "build_date": "2026-01-01T00:00:00.000Z", "build_snapshot": false,
			"lucene_version": "8.11.1", "minimum_wire_compatibility_version": "6.8.0",
			"minimum_index_compatibility_version": "6.0.0-beta1",
		},
		"tagline": "You Know, for Search",
	}
}

// resolve turns an index expression (names, wildcards, comma lists) into
// existing index names. A missing concrete name is index_not_found unless
// ignoreMissing; a wildcard that matches nothing is fine.
func (s *Server) resolve(expr string, ignoreMissing bool) ([]string, *esError) {
	seen := map[string]bool{}
	var out []string
	for _, part := range strings.Split(expr, ",") {
		if part == "_all" {
			part = "*"
		}
		if strings.ContainsAny(part, "*?") {
			for name := range s.indices {
				if ok, _ := path.Match(part, name); ok && !seen[name] {
					seen[name] = true
					out = append(out, name)
				}
			}
			continue
		}
		if s.indices[part] == nil {
			if ignoreMissing {
				continue
			}
			return nil, indexNotFound(part)
		}
		if !seen[part] {
			seen[part] = true
			out = append(out, part)
		}
	}
	sort.Strings(out)
	return out, nil
}

func validIndexName(name string) *esError {
	if name == "" || name != strings.ToLower(name) || strings.HasPrefix(name, "_") || strings.HasPrefix(name, "-") ||
		strings.ContainsAny(name, `\/*?"<>| ,#:`) {
		return &esError{status: 400, typ: "invalid_index_name_exception",
			reason: "Invalid index name [" + name + "]", extra: map[string]any{"index": name, "index_uuid": "_na_"}}
	}
	return nil
}

// createIndex creates name with the settings and mappings of the
// highest-priority matching index template, overlaid by the request's.
func (s *Server) createIndex(name string, settings, mappings map[string]any) (*index, *esError) {
	if e := validIndexName(name); e != nil {
		return nil, e
	}
	ix := &index{name: name, created: time.Now(), settings: map[string]any{}, mappings: map[string]any{},
		live: map[string]*doc{}, searched: map[string]*doc{}}
	if t := s.matchTemplate(name); t != nil {
		flatten("index", t.settings, ix.settings)
		if t.mappings != nil {
			ix.mappings = t.mappings
		}
	}
	flatten("index", settings, ix.settings)
	if mappings != nil {
		ix.mappings = mappings
	}
	s.indices[name] = ix
	return ix, nil
}

type templateData struct {
	settings, mappings map[string]any
}

func (s *Server) matchTemplate(name string) *templateData {
	best, bestPrio := (*templateData)(nil), -1
	var names []string
	for n := range s.templates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		var t struct {
			IndexPatterns []string `json:"index_patterns"`
			Priority      int      `json:"priority"`
			Template      struct {
				Settings map[string]any `json:"settings"`
				Mappings map[string]any `json:"mappings"`
			} `json:"template"`
		}
		if json.Unmarshal(s.templates[n], &t) != nil {
			continue
		}
		for _, p := range t.IndexPatterns {
			if ok, _ := path.Match(p, name); ok && t.Priority > bestPrio {
				best, bestPrio = &templateData{t.Template.Settings, t.Template.Mappings}, t.Priority
			}
		}
	}
	return best
}

// flatten writes settings as flat dotted keys under prefix ("index"), the
// way Elasticsearch normalises them; keys already starting with "index."
// are kept.
func flatten(prefix string, in map[string]any, out map[string]any) {
	for k, v := range in {
		key := k
		if prefix != "" && !strings.HasPrefix(k, prefix+".") && k != prefix {
			key = prefix + "." + k
		}
		if k == prefix {
			key = prefix
		}
		if m, ok := v.(map[string]any); ok {
			flatten(key, m, out)
			continue
		}
		out[key] = fmt.Sprint(v)
	}
}

// nested turns flat dotted settings back into objects for GET.
func nested(flat map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range flat {
		cur := out
		parts := strings.Split(k, ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := cur[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[p] = next
			}
			cur = next
		}
		cur[parts[len(parts)-1]] = v
	}
	return out
}

func (s *Server) indexOp(m, name string, body []byte) (int, any) {
	switch m {
	case "PUT":
		if s.indices[name] != nil {
			return 400, &esError{status: 400, typ: "resource_already_exists_exception",
				reason: "index [" + name + "/fake-uuid] already exists", extra: map[string]any{"index": name}}
		}
		var req struct {
			Settings map[string]any `json:"settings"`
			Mappings map[string]any `json:"mappings"`
		}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &req); err != nil {
				return 400, errorf(400, "parse_exception", "failed to parse request body: %s", err)
			}
		}
		if _, e := s.createIndex(name, req.Settings, req.Mappings); e != nil {
			return e.status, e
		}
		return 200, map[string]any{"acknowledged": true, "shards_acknowledged": true, "index": name}
	case "HEAD":
		names, e := s.resolve(name, false)
		if e != nil || len(names) == 0 {
			return 404, nil
		}
		return 200, nil
	case "GET":
		return s.getIndex(name, false)
	case "DELETE":
		names, e := s.resolve(name, false)
		if e != nil {
			return e.status, e
		}
		for _, n := range names {
			delete(s.indices, n)
		}
		return 200, map[string]any{"acknowledged": true}
	}
	return 405, errorf(405, "illegal_argument_exception", "Incorrect HTTP method for uri [/%s] and method [%s]", name, m)
}

func (s *Server) getIndex(expr string, mappingOnly bool) (int, any) {
	names, e := s.resolve(expr, false)
	if e != nil {
		return e.status, e
	}
	out := map[string]any{}
	for _, n := range names {
		ix := s.indices[n]
		if mappingOnly {
			out[n] = map[string]any{"mappings": ix.mappings}
			continue
		}
		settings := map[string]any{}
		for k, v := range ix.settings {
			settings[k] = v
		}
		settings["index.provided_name"] = n
		settings["index.creation_date"] = strconv.FormatInt(ix.created.UnixMilli(), 10)
		settings["index.number_of_shards"] = orDefault(settings["index.number_of_shards"], "1")
		settings["index.number_of_replicas"] = orDefault(settings["index.number_of_replicas"], "1")
		out[n] = map[string]any{"aliases": map[string]any{}, "mappings": ix.mappings, "settings": nested(settings)}
	}
	return 200, out
}

func orDefault(v any, d string) any {
	if v == nil {
		return d
	}
	return v
}

func (s *Server) ilm(m, name string, body []byte) (int, any) {
	switch m {
	case "PUT":
		var req struct {
			Policy json.RawMessage `json:"policy"`
		}
		if err := json.Unmarshal(body, &req); err != nil || len(req.Policy) == 0 {
			return 400, errorf(400, "parse_exception", "request body is required and must hold a [policy]")
		}
		p := s.policies[name]
		p.body, p.version, p.modified = req.Policy, p.version+1, time.Now().UTC()
		s.policies[name] = p
		return 200, map[string]any{"acknowledged": true}
	case "GET":
		p, ok := s.policies[name]
		if !ok {
			return 404, errorf(404, "resource_not_found_exception", "Lifecycle policy not found: %s", name)
		}
		return 200, map[string]any{name: map[string]any{
			"version": p.version, "modified_date": p.modified.Format("2006-01-02T15:04:05.000Z"),
			"policy": p.body, "in_use_by": map[string]any{"indices": s.indicesUsing(name), "data_streams": []string{}, "composable_templates": []string{}},
		}}
	case "DELETE":
		if _, ok := s.policies[name]; !ok {
			return 404, errorf(404, "resource_not_found_exception", "Lifecycle policy not found: %s", name)
		}
		delete(s.policies, name)
		return 200, map[string]any{"acknowledged": true}
	}
	return 405, errorf(405, "illegal_argument_exception", "Incorrect HTTP method for uri [/_ilm/policy/%s] and method [%s]", name, m)
}

func (s *Server) indicesUsing(policy string) []string {
	out := []string{}
	for n, ix := range s.indices {
		if ix.settings["index.lifecycle.name"] == policy {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func (s *Server) indexTemplate(m, name string, body []byte) (int, any) {
	switch m {
	case "PUT", "POST":
		var t struct {
			IndexPatterns []string `json:"index_patterns"`
		}
		if err := json.Unmarshal(body, &t); err != nil {
			return 400, errorf(400, "x_content_parse_exception", "failed to parse index template: %s", err)
		}
		if len(t.IndexPatterns) == 0 {
			return 400, errorf(400, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;")
		}
		s.templates[name] = bytes.Clone(body)
		return 200, map[string]any{"acknowledged": true}
	case "GET":
		t, ok := s.templates[name]
		if !ok {
			return 404, errorf(404, "resource_not_found_exception", "index template matching [%s] not found", name)
		}
		return 200, map[string]any{"index_templates": []any{map[string]any{"name": name, "index_template": json.RawMessage(t)}}}
	case "HEAD":
		if _, ok := s.templates[name]; !ok {
			return 404, nil
		}
		return 200, nil
	case "DELETE":
		if _, ok := s.templates[name]; !ok {
			return 404, errorf(404, "resource_not_found_exception", "index_template [%s] missing", name)
		}
		delete(s.templates, name)
		return 200, map[string]any{"acknowledged": true}
	}
	return 405, errorf(405, "illegal_argument_exception", "Incorrect HTTP method for uri [/_index_template/%s] and method [%s]", name, m)
}

func (s *Server) refreshAll(expr string) (int, any) {
	names, e := s.resolve(expr, false)
	if e != nil {
		return e.status, e
	}
	for _, n := range names {
		s.indices[n].refresh()
	}
	return 200, map[string]any{"_shards": map[string]any{"total": 2 * len(names), "successful": len(names), "failed": 0}}
}

func (ix *index) refresh() {
	ix.searched = make(map[string]*doc, len(ix.live))
	for id, d := range ix.live {
		ix.searched[id] = d
	}
}

// wantsRefresh reports whether the refresh parameter asks for the change
// to be searchable on return ("true", "" or "wait_for").
func wantsRefresh(q map[string][]string) bool {
	v, ok := q["refresh"]
	if !ok {
		return false
	}
	return len(v) == 0 || v[0] == "" || v[0] == "true" || v[0] == "wait_for"
}

func parseSource(body []byte) (map[string]any, *esError) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, errorf(400, "mapper_parsing_exception", "failed to parse")
	}
	return m, nil
}

// store writes a document; op is "index" or "create".
func (s *Server) store(indexName, id string, source []byte, op string) (int, map[string]any, *esError) {
	ix := s.indices[indexName]
	if ix == nil {
		var e *esError
		if ix, e = s.createIndex(indexName, nil, nil); e != nil {
			return 0, nil, e
		}
	}
	parsed, e := parseSource(source)
	if e != nil {
		return 0, nil, e
	}
	old := ix.live[id]
	if old != nil && op == "create" {
		return 0, nil, &esError{status: 409, typ: "version_conflict_engine_exception",
			reason: fmt.Sprintf("[%s]: version conflict, document already exists (current version [%d])", id, old.version),
			extra:  map[string]any{"index": indexName, "shard": "0", "index_uuid": "fake-uuid"}}
	}
	s.seqNo++
	d := &doc{id: id, source: bytes.Clone(source), parsed: parsed, version: 1, seqNo: s.seqNo}
	status, result := 201, "created"
	if old != nil {
		d.version, d.ord, status, result = old.version+1, old.ord, 200, "updated"
	} else {
		d.ord = s.seqNo
	}
	ix.live[id] = d
	return status, s.writeResult(indexName, d, result), nil
}

func (s *Server) writeResult(indexName string, d *doc, result string) map[string]any {
	return map[string]any{"_index": indexName, "_type": "_doc", "_id": d.id, "_version": d.version, "result": result,
		"_shards": map[string]any{"total": 2, "successful": 1, "failed": 0}, "_seq_no": d.seqNo, "_primary_term": 1}
}

func (s *Server) putDoc(indexName, id string, body []byte, q map[string][]string, auto bool) (int, any) {
	op := "index"
	if v := q["op_type"]; len(v) > 0 && v[0] == "create" {
		op = "create"
	}
	status, res, e := s.store(indexName, id, body, op)
	if e != nil {
		return e.status, e
	}
	if wantsRefresh(q) {
		s.indices[indexName].refresh()
		res["forced_refresh"] = true
	}
	return status, res
}

func (s *Server) getDoc(indexName, id string) (int, any) {
	ix := s.indices[indexName]
	if ix == nil {
		return 404, indexNotFound(indexName)
	}
	d := ix.live[id]
	if d == nil {
		return 404, map[string]any{"_index": indexName, "_type": "_doc", "_id": id, "found": false}
	}
	return 200, map[string]any{"_index": indexName, "_type": "_doc", "_id": id, "_version": d.version,
		"_seq_no": d.seqNo, "_primary_term": 1, "found": true, "_source": d.source}
}

func (s *Server) deleteDoc(indexName, id string, q map[string][]string) (int, any) {
	ix := s.indices[indexName]
	if ix == nil {
		return 404, indexNotFound(indexName)
	}
	d := ix.live[id]
	s.seqNo++
	if d == nil {
		return 404, map[string]any{"_index": indexName, "_type": "_doc", "_id": id, "_version": 1, "result": "not_found",
			"_shards": map[string]any{"total": 2, "successful": 1, "failed": 0}, "_seq_no": s.seqNo, "_primary_term": 1}
	}
	delete(ix.live, id)
	if wantsRefresh(q) {
		ix.refresh()
	}
	return 200, map[string]any{"_index": indexName, "_type": "_doc", "_id": id, "_version": d.version + 1, "result": "deleted",
		"_shards": map[string]any{"total": 2, "successful": 1, "failed": 0}, "_seq_no": s.seqNo, "_primary_term": 1}
}

// updateDoc merges partial into a document (doc_as_upsert creates it).
func (s *Server) updateDoc(indexName, id string, body []byte) (int, map[string]any, *esError) {
	var req struct {
		Doc         json.RawMessage `json:"doc"`
		DocAsUpsert bool            `json:"doc_as_upsert"`
		Upsert      json.RawMessage `json:"upsert"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return 0, nil, errorf(400, "x_content_parse_exception", "failed to parse update: %s", err)
	}
	if len(req.Doc) == 0 {
		return 0, nil, errorf(400, "action_request_validation_exception", "Validation Failed: 1: script or doc is missing;")
	}
	ix := s.indices[indexName]
	var old *doc
	if ix != nil {
		old = ix.live[id]
	}
	if old == nil {
		switch {
		case req.DocAsUpsert:
			return s.store(indexName, id, req.Doc, "create")
		case len(req.Upsert) > 0:
			return s.store(indexName, id, req.Upsert, "create")
		}
		if ix == nil {
			return 0, nil, indexNotFound(indexName)
		}
		return 0, nil, &esError{status: 404, typ: "document_missing_exception", reason: "[_doc][" + id + "]: document missing",
			extra: map[string]any{"index": indexName, "shard": "0", "index_uuid": "fake-uuid"}}
	}
	partial, e := parseSource(req.Doc)
	if e != nil {
		return 0, nil, e
	}
	var merged map[string]any
	dec := json.NewDecoder(bytes.NewReader(old.source))
	dec.UseNumber()
	_ = dec.Decode(&merged)
	changed := merge(merged, partial)
	if !changed {
		return 200, s.writeResult(indexName, old, "noop"), nil
	}
	src, err := json.Marshal(merged)
	if err != nil {
		return 0, nil, errorf(500, "internal_server_error", "%s", err)
	}
	_, res, e := s.store(indexName, id, src, "index")
	if e != nil {
		return 0, nil, e
	}
	res["result"] = "updated"
	return 200, res, nil
}

// merge deep-merges src into dst and reports whether anything changed.
func merge(dst, src map[string]any) bool {
	changed := false
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				if merge(dm, sm) {
					changed = true
				}
				continue
			}
		}
		if !equalJSON(dst[k], v) {
			dst[k] = v
			changed = true
		}
	}
	return changed
}

func equalJSON(a, b any) bool {
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return bytes.Equal(ab, bb)
}

func (s *Server) update(indexName, id string, body []byte, q map[string][]string) (int, any) {
	status, res, e := s.updateDoc(indexName, id, body)
	if e != nil {
		return e.status, e
	}
	if wantsRefresh(q) {
		s.indices[indexName].refresh()
	}
	return status, res
}

// bulk runs an NDJSON bulk request item by item, as Elasticsearch does:
// one item's failure does not fail the others.
func (s *Server) bulk(defaultIndex string, body []byte, q map[string][]string) (int, any) {
	s.stats.BulkRequests++
	start := time.Now()
	lines := bytes.Split(body, []byte("\n"))
	var items []any
	hasErrors := false
	touched := map[string]bool{}
	for i := 0; i < len(lines); i++ {
		line := bytes.TrimSpace(lines[i])
		if len(line) == 0 {
			continue
		}
		var action map[string]struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}
		if err := json.Unmarshal(line, &action); err != nil || len(action) != 1 {
			return 400, errorf(400, "illegal_argument_exception", "Malformed action/metadata line [%d], expected START_OBJECT or END_OBJECT", i+1)
		}
		var op string
		for k := range action {
			op = k
		}
		meta := action[op]
		if meta.Index == "" {
			meta.Index = defaultIndex
		}
		var source []byte
		if op != "delete" {
			i++
			if i >= len(lines) || len(bytes.TrimSpace(lines[i])) == 0 {
				return 400, errorf(400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
			}
			source = bytes.TrimSpace(lines[i])
		}
		if op != "index" && op != "create" && op != "update" && op != "delete" {
			return 400, errorf(400, "illegal_argument_exception", "Malformed action/metadata line [%d], expected field [create], [delete], [index] or [update] but found [%s]", i+1, op)
		}
		s.stats.BulkItems++
		if meta.Index == "" {
			e := errorf(400, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
			items = append(items, map[string]any{op: itemError(meta.Index, meta.ID, e)})
			hasErrors = true
			continue
		}
		if e := s.rejection(); e != nil {
			s.stats.RejectedItems++
			items = append(items, map[string]any{op: itemError(meta.Index, meta.ID, e)})
			hasErrors = true
			continue
		}
		if meta.ID == "" && op != "index" && op != "create" {
			e := errorf(400, "action_request_validation_exception", "Validation Failed: 1: id is missing;")
			items = append(items, map[string]any{op: itemError(meta.Index, meta.ID, e)})
			hasErrors = true
			continue
		}
		if meta.ID == "" {
			s.autoID++
			meta.ID = fmt.Sprintf("fake-%d", s.autoID)
		}
		var (
			status int
			res    map[string]any
			e      *esError
		)
		switch op {
		case "index", "create":
			status, res, e = s.store(meta.Index, meta.ID, source, op)
		case "update":
			status, res, e = s.updateDoc(meta.Index, meta.ID, source)
		case "delete":
			var r any
			status, r = s.deleteDoc(meta.Index, meta.ID, nil)
			if ee, ok := r.(*esError); ok {
				e = ee
			} else {
				res = r.(map[string]any)
			}
		}
		if e != nil {
			items = append(items, map[string]any{op: itemError(meta.Index, meta.ID, e)})
			hasErrors = true
			continue
		}
		touched[meta.Index] = true
		res["status"] = status
		items = append(items, map[string]any{op: res})
	}
	if wantsRefresh(q) {
		for n := range touched {
			if ix := s.indices[n]; ix != nil {
				ix.refresh()
			}
		}
	}
	if items == nil {
		return 400, errorf(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
	}
	return 200, map[string]any{"took": time.Since(start).Milliseconds(), "errors": hasErrors, "items": items}
}

// rejection returns the injected per-item fault, if this item gets one.
func (s *Server) rejection() *esError {
	f := &s.faults
	status := 0
	switch {
	case f.rejectItems > 0:
		f.rejectItems--
		status = f.rejectStatus
	case f.rejectFraction > 0 && f.rng.Float64() < f.rejectFraction:
		status = f.fractionStatus
	default:
		return nil
	}
	if status == 429 {
		return errorf(429, "es_rejected_execution_exception", "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1, max_coordinating_and_primary_bytes=0]")
	}
	return errorf(status, statusType(status), "[fake][0] primary shard is not active Timeout: [1m]")
}

func itemError(indexName, id string, e *esError) map[string]any {
	cause := map[string]any{"type": e.typ, "reason": e.reason}
	for k, v := range e.extra {
		cause[k] = v
	}
	return map[string]any{"_index": indexName, "_type": "_doc", "_id": id, "status": e.status, "error": cause}
}

// searchRequest is the part of the search DSL the fake understands.
type searchRequest struct {
	Query          map[string]any `json:"query"`
	Size           *int           `json:"size"`
	From           *int           `json:"from"`
	Sort           []any          `json:"sort"`
	SearchAfter    []any          `json:"search_after"`
	TrackTotalHits any            `json:"track_total_hits"`
}

func parseSearch(body []byte) (searchRequest, *esError) {
	var req searchRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return req, errorf(400, "parsing_exception", "failed to parse search request: %s", err)
	}
	return req, nil
}

// matching returns the searchable documents of the resolved indices that
// match the query, each with its index name.
func (s *Server) matching(expr string, query map[string]any) ([]hit, *esError) {
	names, e := s.resolve(expr, false)
	if e != nil {
		return nil, e
	}
	var out []hit
	for _, n := range names {
		s.stats.Queries[n]++
		ix := s.indices[n]
		start := len(out)
		for _, d := range ix.searched {
			ok, e := matches(query, d, ix)
			if e != nil {
				return nil, e
			}
			if ok {
				out = append(out, hit{index: ix, doc: d})
			}
		}
		// A stable order: first insertion (kept across updates).
		slices.SortFunc(out[start:], func(a, b hit) int { return cmp.Compare(a.doc.ord, b.doc.ord) })
	}
	return out, nil
}

type hit struct {
	index *index
	doc   *doc
	sort  []any
}

func (s *Server) search(expr string, body []byte, q map[string][]string) (int, any) {
	s.stats.Searches++
	start := time.Now()
	req, e := parseSearch(body)
	if e != nil {
		return e.status, e
	}
	size, from := 10, 0
	if req.Size != nil {
		size = *req.Size
	}
	if v := q["size"]; len(v) > 0 {
		size, _ = strconv.Atoi(v[0])
	}
	if req.From != nil {
		from = *req.From
	}
	if from+size > maxResultWindow {
		return 400, &esError{status: 400, typ: "search_phase_execution_exception", reason: "all shards failed",
			extra: map[string]any{"phase": "query", "caused_by": map[string]any{"type": "illegal_argument_exception",
				"reason": fmt.Sprintf("Result window is too large, from + size must be less than or equal to: [%d] but was [%d].", maxResultWindow, from+size)}}}
	}
	hits, e := s.matching(expr, req.Query)
	if e != nil {
		return e.status, e
	}
	keys, e := parseSort(req.Sort)
	if e != nil {
		return e.status, e
	}
	for i := range hits {
		for _, k := range keys {
			hits[i].sort = append(hits[i].sort, sortValue(hits[i], k))
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return compareHits(hits[i], hits[j], keys) < 0 })
	total := len(hits)
	if req.SearchAfter != nil {
		if len(keys) == 0 || len(req.SearchAfter) != len(keys) {
			return 400, errorf(400, "illegal_argument_exception", "search_after has %d value(s) but sort has %d.", len(req.SearchAfter), len(keys))
		}
		after := hit{sort: req.SearchAfter}
		k := sort.Search(len(hits), func(i int) bool { return compareHits(hits[i], after, keys) > 0 })
		hits = hits[k:]
	}
	if from < len(hits) {
		hits = hits[from:]
	} else {
		hits = nil
	}
	if len(hits) > size {
		hits = hits[:size]
	}
	out := make([]any, 0, len(hits))
	for _, h := range hits {
		m := map[string]any{"_index": h.index.name, "_type": "_doc", "_id": h.doc.id, "_score": nil, "_source": h.doc.source}
		if len(keys) > 0 {
			m["sort"] = h.sort
		} else {
			m["_score"] = 1.0
		}
		out = append(out, m)
	}
	relation := "eq"
	if total > maxResultWindow && req.TrackTotalHits != true {
		total, relation = maxResultWindow, "gte"
	}
	var maxScore any
	if len(keys) == 0 && len(out) > 0 {
		maxScore = 1.0
	}
	return 200, map[string]any{
		"took": time.Since(start).Milliseconds(), "timed_out": false,
		"_shards": map[string]any{"total": 1, "successful": 1, "skipped": 0, "failed": 0},
		"hits":    map[string]any{"total": map[string]any{"value": total, "relation": relation}, "max_score": maxScore, "hits": out},
	}
}

func (s *Server) count(expr string, body []byte) (int, any) {
	s.stats.Counts++
	req, e := parseSearch(body)
	if e != nil {
		return e.status, e
	}
	hits, e := s.matching(expr, req.Query)
	if e != nil {
		return e.status, e
	}
	return 200, map[string]any{"count": len(hits), "_shards": map[string]any{"total": 1, "successful": 1, "skipped": 0, "failed": 0}}
}

// deleteByQuery deletes every searchable match, as Elasticsearch's
// scroll-and-delete does; documents written since the last refresh are
// not seen.
func (s *Server) deleteByQuery(expr string, body []byte, q map[string][]string) (int, any) {
	s.stats.DeleteByQueries++
	start := time.Now()
	req, e := parseSearch(body)
	if e != nil {
		return e.status, e
	}
	if req.Query == nil {
		return 400, errorf(400, "action_request_validation_exception", "Validation Failed: 1: query is missing;")
	}
	hits, e := s.matching(expr, req.Query)
	if e != nil {
		return e.status, e
	}
	deleted, conflicts := 0, 0
	for _, h := range hits {
		cur := h.index.live[h.doc.id]
		if cur == nil {
			continue
		}
		if cur != h.doc {
			conflicts++ // changed since the refresh: Elasticsearch reports a version conflict
			continue
		}
		delete(h.index.live, h.doc.id)
		s.seqNo++
		deleted++
	}
	if wantsRefresh(q) {
		for _, h := range hits {
			h.index.refresh()
		}
	}
	return 200, map[string]any{"took": time.Since(start).Milliseconds(), "timed_out": false, "total": len(hits),
		"deleted": deleted, "batches": 1, "version_conflicts": conflicts, "noops": 0,
		"retries": map[string]any{"bulk": 0, "search": 0}, "throttled_millis": 0, "requests_per_second": -1.0,
		"throttled_until_millis": 0, "failures": []any{}}
}
