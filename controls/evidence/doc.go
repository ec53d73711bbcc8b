// Package evidence is continuous attestation: it evaluates Aether's
// controls (what the configuration and topology declare against what is
// live), renders the result for an auditor (HTML) and for machines (JSON),
// and exports each control's status as a Prometheus metric, re-evaluated on
// a schedule so that a control turns red within one period of breaking.
//
// # Checks
//
// A [Check] is one control: an ID, a title, the SOC 2 criteria it serves
// and a function returning a [Result]: pass, fail or error, what is
// declared, what is live, why, and details. [Evaluate] runs checks
// concurrently, each under its own timeout; a check that panics, hangs or
// returns no status is reported as an error with the reason, and never
// stops the others. The built-in checks:
//
//	RedisTTL            redis_key_ttl          keys Aether writes without a TTL
//	TLSEverywhere       encryption_in_transit  connections configured without TLS
//	ModelApproved       model_approval         the served model's SHA-256 not in the manifest
//	AuditTrail(Func)    audit_trail            a broken hash chain, or no record for maxAge
//	AlertRules          alert_rules            required Prometheus alerts missing
//	Drift               (caller's name)        declared items missing live, live items not declared
//	DeletionReceipts    deletion_receipts      deletion requests with an incomplete receipt
//	PersonalDataSealed  personal_data_sealed   a personal stream not sealed per user, no readable
//	                                           master key, or a probe data key that still opens after
//	                                           its destruction
//
// The criteria of a built-in check are a default; set Check.Criteria to
// change them.
//
// # The JSON report (format "aether.evidence/1")
//
// Field names are stable within a format; a change that renames or removes
// one changes the format.
//
//	{
//	  "format": "aether.evidence/1",
//	  "generatedAt": "2026-11-27T05:00:00Z",        // UTC, when evaluation started
//	  "durationSeconds": 0.041,                      // of the whole evaluation
//	  "configDigest": "sha256:9f86d0...",            // of the configuration, never the configuration
//	  "summary": {"total": 6, "pass": 4, "fail": 1, "error": 1},
//	  "controls": [                                  // in the order the checks were given
//	    {
//	      "id": "redis_key_ttl",
//	      "title": "Every Redis key Aether writes expires",
//	      "criteria": ["C1.2", "P4.2"],
//	      "status": "fail",                          // "pass", "fail" or "error"
//	      "declared": "every key matching aether:recs:* has a TTL",
//	      "live": "1200 keys scanned, 3 without a TTL",
//	      "why": "3 keys with no TTL: ...",
//	      "details": ["aether:recs:<sha256 3f2a9c1b0e4d>", ...],
//	      "durationSeconds": 0.012
//	    }
//	  ],
//	  "notEvaluated": [{"id": "deletion_receipts", "why": "..."}]  // omitted when empty
//	}
//
// "error" means the control could not be evaluated (a store unreachable, a
// check timed out): it is not a pass, and [Report.OK] is false.
//
// # Metrics
//
// A [Scheduler] registers:
//
//	aether_control_status{control, criteria}          1 pass, 0 fail, -1 error
//	aether_control_last_evaluated_timestamp_seconds   end of the last evaluation (Unix time)
//
// criteria is the control's criteria joined with ",". Alert on
// aether_control_status < 1 (fail or error) and on
// time() - aether_control_last_evaluated_timestamp_seconds above twice the
// period (the evidence stopped coming).
//
// # Deletion receipts
//
// [DeletionReceipts] reads the receipts that deletion of a user (runner
// forget) writes, one JSON file per request (*.json) in one directory:
//
//	{
//	  "id": "del-20261127T050000Z-7f3a",          // the request's id, unique
//	  "subject": "u-7f3a9c...",                   // the user's pseudonym, never the user id
//	  "time": "2026-11-27T05:00:00Z",             // when the deletion completed (RFC 3339)
//	  "expected": ["redis", "feature-store", "audit", "dead-letters"],  // optional
//	  "stores": [
//	    {"name": "redis", "count": 1},            // count: what was deleted there, 0 is a valid count
//	    {"name": "audit", "count": 12},
//	    {"name": "dead-letters", "count": null, "error": "timeout"}
//	  ]
//	}
//
// A receipt is complete when it has at least one store, every store has a
// count and no error, and every store in its "expected" list and in the
// stores the check was built with is reported. Unknown fields are ignored,
// so the writer may add more.
package evidence
