package api

// SubjectRef is the pseudonymous reference of a user id that both APIs
// write as the subject of the user's audit events: the hex HMAC-SHA256 of
// the id under key (Config.AuditSubjectKey, AdminConfig.AuditSubjectKey).
// A deletion request finds and redacts the user's records by it.
func SubjectRef(key []byte, userID string) string { return hmacHex(key, userID) }
