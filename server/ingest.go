package server

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/router"
)

// ingestHandler serves POST /events: one CloudEvent in binary or structured
// mode, or a batch (application/cloudevents-batch+json). It answers 202 once
// every event is durable (a batch is all or nothing), with problem JSON
// otherwise. An empty batch ("[]", valid in the JSON format) is answered 202
// with nothing accepted and nothing written.
type ingestHandler struct {
	r   *router.Router
	lim cloudevent.Limits
}

type accepted struct {
	Accepted int `json:"accepted"`
	Routed   int `json:"routed"`
}

func (h *ingestHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		p := probMethod
		p.Detail = "publish events with POST"
		writeProblem(w, p)
		return
	}
	events, mode, err := cloudevent.ReadRequest(req, h.lim)
	if err != nil {
		if d, ok := bodyTimedOut(req); ok {
			p := probBodyTimeout
			p.Detail = fmt.Sprintf("the body did not arrive within %s (http_body_timeout); nothing was accepted", d)
			w.Header().Set("Connection", "close")
			writeProblem(w, p)
			return
		}
		writeProblem(w, ProblemFor(err))
		return
	}
	if d := authorizePublish(caller(req.Context()), events, mode == cloudevent.ModeBatch); d != nil {
		writeProblem(w, d.problem())
		return
	}
	var res router.PublishResult
	if len(events) > 0 { // an empty batch has nothing to make durable
		if res, err = h.r.Publish(req.Context(), events); err != nil {
			writeProblem(w, ProblemFor(err))
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(accepted{Accepted: len(events), Routed: res.Routed})
}
