package source

// Refusal is a payload the source will not serve, as given to
// Options.Refused: the previous snapshot keeps serving.
type Refusal struct {
	Origin Origin
	// Reason is one of the Reason* constants.
	Reason string
	// Version is the refused snapshot's version, "" when it did not decode.
	Version string
	// Message is the error, for a human.
	Message string
}

// serving tells Options.Serving that a valid payload for the served
// version arrived. s.mu is held.
func (s *Source) serving() {
	if s.opts.Serving != nil && s.version != "" {
		s.opts.Serving(s.version)
	}
}
