package httpapi

import (
	"net/http"
	"strings"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/consent"
)

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	m.HandleFunc("GET /v1/openapi.json", s.openapi)

	m.Handle("POST /v1/tokenize", s.auth(s.tokenize))
	m.Handle("POST /v1/detokenize", s.auth(s.detokenize))

	m.Handle("PUT /v1/subjects/{id}", s.auth(s.putSubject))
	m.Handle("GET /v1/subjects/{id}", s.auth(s.getSubject))

	m.Handle("POST /v1/subjects/{id}/suspend", s.auth(s.suspend))
	m.Handle("POST /v1/subjects/{id}/proof", s.auth(s.proof))
	m.Handle("POST /v1/subjects/{id}/reinstate", s.auth(s.reinstate))
	m.Handle("POST /v1/subjects/{id}/restrict", s.auth(s.restrict))
	m.Handle("POST /v1/subjects/{id}/unrestrict", s.auth(s.unrestrict))
	m.Handle("POST /v1/subjects/{id}/objection", s.auth(s.objection))
	m.Handle("POST /v1/subjects/{id}/legal-holds", s.auth(s.addLegalHold))
	m.Handle("DELETE /v1/subjects/{id}/legal-holds/{hold}", s.auth(s.releaseLegalHold))
	m.Handle("POST /v1/subjects/{id}/retention", s.auth(s.retention))
	m.Handle("POST /v1/subjects/{id}/erase", s.auth(s.erase))
	m.Handle("GET /v1/subjects/{id}/erasures", s.auth(s.erasures))
	m.Handle("GET /v1/subjects/{id}/access-report", s.auth(s.accessReport))

	m.Handle("POST /v1/evidence", s.auth(s.createEvidence))
	m.Handle("GET /v1/evidence/{id}", s.auth(s.getEvidence))
	m.Handle("POST /v1/evidence/{id}/approve", s.auth(s.approveEvidence))
	m.Handle("POST /v1/evidence/{id}/revoke", s.auth(s.revokeEvidence))

	m.Handle("POST /v1/consents", s.auth(s.grantConsent))
	m.Handle("GET /v1/consents/{id}", s.auth(s.getConsent))
	m.Handle("POST /v1/consents/{id}/withdraw", s.auth(s.withdrawConsent))

	m.Handle("GET /v1/keys", s.auth(s.listKeys))
	m.Handle("POST /v1/keys/rewrap", s.auth(s.rewrap))
	m.Handle("POST /v1/keys/kek/rotate", s.auth(s.rotateKEK))
	m.Handle("POST /v1/keys/{category}/rotate", s.auth(s.rotateKeys))
	m.Handle("POST /v1/keys/{category}/config", s.auth(s.configureKeys))
	m.Handle("POST /v1/keys/{category}/versions/{version}/{action}", s.auth(s.keyVersionAction))
	m.Handle("GET /v1/jobs/{id}", s.auth(s.getJob))

	m.Handle("POST /v1/auth/keys", s.auth(s.createAPIKey))
	m.Handle("DELETE /v1/auth/keys/{principal}", s.auth(s.revokeAPIKeys))

	m.HandleFunc("/", s.notFound)
}

// notFound answers unrouted requests: 405 with an Allow header when the path
// exists under other methods, 404 otherwise.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: errorDetail{Code: "METHOD_NOT_ALLOWED",
			Message: "this route does not take " + r.Method}})
		return
	}
	writeError(w, &vault.Error{Kind: vault.KindNotFound, Code: vault.CodeNotFound, Message: "no such route"})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.v.Ready(r.Context()); err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(OpenAPI())
}

func (s *Server) tokenize(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	var req vault.TokenizeRequest
	if !s.decode(w, r, &req) {
		return
	}
	res, err := s.v.Tokenize(r.Context(), p, &req)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// detokenizeDenied is the body when every token was denied: the per-token
// reasons and an error code.
type detokenizeDenied struct {
	*vault.DetokenizeResult
	Error errorDetail `json:"error"`
}

func (s *Server) detokenize(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	var req vault.DetokenizeRequest
	if !s.decode(w, r, &req) {
		return
	}
	res, err := s.v.Detokenize(r.Context(), p, &req)
	switch {
	case err != nil && res != nil:
		e := vault.AsError(err)
		writeJSON(w, statusOf[e.Kind], detokenizeDenied{DetokenizeResult: res, Error: errorDetail{Code: e.Code, Message: e.Message}})
	case err != nil:
		s.writeErr(w, r, err)
	default:
		writeJSON(w, http.StatusOK, res)
		res.Clear()
	}
}

func (s *Server) putSubject(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	var req vault.PutSubjectRequest
	if !s.decode(w, r, &req) {
		return
	}
	subj, created, err := s.v.PutSubject(r.Context(), p, r.PathValue("id"), &req)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, subj)
}

func (s *Server) getSubject(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	subj, err := s.v.GetSubject(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, subj)
}

// consentView is a consent with its status at the time of the request.
type consentView struct {
	*consent.Consent
	Status string `json:"status"`
}

func (s *Server) grantConsent(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	var req vault.GrantConsentRequest
	if !s.decode(w, r, &req) {
		return
	}
	c, err := s.v.GrantConsent(r.Context(), p, &req)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, consentView{Consent: c, Status: s.v.ConsentStatus(c)})
}

func (s *Server) getConsent(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	c, status, err := s.v.GetConsent(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, consentView{Consent: c, Status: status})
}

func (s *Server) withdrawConsent(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	var req vault.WithdrawConsentRequest
	if r.ContentLength != 0 {
		if !s.decode(w, r, &req) {
			return
		}
	}
	c, err := s.v.WithdrawConsent(r.Context(), p, r.PathValue("id"), &req)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, consentView{Consent: c, Status: consent.StatusWithdrawn})
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	var req vault.CreateAPIKeyRequest
	if !s.decode(w, r, &req) {
		return
	}
	res, err := s.v.CreateAPIKey(r.Context(), p, &req)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}

func (s *Server) revokeAPIKeys(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	n, err := s.v.RevokeAPIKeys(r.Context(), p, r.PathValue("principal"))
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"revoked": n})
}
