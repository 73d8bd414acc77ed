package mysql

// SetSchemaQueryHook makes s call f before each information_schema lookup.
func SetSchemaQueryHook(s *Source, f func()) { s.schemaQueryHook = f }
