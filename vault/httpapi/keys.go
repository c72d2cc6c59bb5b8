package httpapi

import (
	"net/http"
	"strconv"

	"github.com/fieldvault/fieldvault/vault"
)

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	res, err := s.v.ListKeys(r.Context(), p)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) rotateKeys(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	res, err := s.v.RotateKeys(r.Context(), p, r.PathValue("category"))
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) configureKeys(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	var req vault.KeyConfigRequest
	if !s.decode(w, r, &req) {
		return
	}
	res, err := s.v.ConfigureKeys(r.Context(), p, r.PathValue("category"), &req)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) keyVersionAction(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	ver, err := strconv.ParseUint(r.PathValue("version"), 10, 32)
	if err != nil || ver == 0 {
		writeError(w, &vault.Error{Kind: vault.KindInvalid, Code: vault.CodeInvalidRequest, Message: "version must be a positive integer"})
		return
	}
	res, err := s.v.SetKeyVersionState(r.Context(), p, r.PathValue("category"), r.PathValue("action"), uint32(ver))
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) rewrap(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	var req vault.RewrapRequest
	if !s.decodeOptional(w, r, &req) {
		return
	}
	job, err := s.v.StartRewrap(r.Context(), p, &req)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, job)
}

func (s *Server) rotateKEK(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	n, err := s.v.RotateKEK(r.Context(), p)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"keysets_rewrapped": n})
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	job, err := s.v.GetJob(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, job)
}
