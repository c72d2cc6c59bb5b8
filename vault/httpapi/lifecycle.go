package httpapi

import (
	"net/http"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// decodeOptional decodes a body when there is one: lifecycle calls may be
// sent without a body.
func (s *Server) decodeOptional(w http.ResponseWriter, r *http.Request, dst any) bool {
	if r.ContentLength == 0 {
		return true
	}
	return s.decode(w, r, dst)
}

// subjectCall handles a lifecycle call that returns the subject.
func (s *Server) subjectCall(w http.ResponseWriter, r *http.Request, subj *subject.Subject, err error) {
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, subj)
}

func (s *Server) suspend(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	var req vault.SuspendRequest
	if !s.decodeOptional(w, r, &req) {
		return
	}
	subj, err := s.v.Suspend(r.Context(), p, r.PathValue("id"), &req)
	s.subjectCall(w, r, subj, err)
}

func (s *Server) proof(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	var req vault.ProofRequest
	if !s.decodeOptional(w, r, &req) {
		return
	}
	subj, err := s.v.ReceiveProof(r.Context(), p, r.PathValue("id"), &req)
	s.subjectCall(w, r, subj, err)
}

func (s *Server) reinstate(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	subj, err := s.v.Reinstate(r.Context(), p, r.PathValue("id"))
	s.subjectCall(w, r, subj, err)
}

func (s *Server) restrict(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	var req vault.RestrictRequest
	if !s.decodeOptional(w, r, &req) {
		return
	}
	subj, err := s.v.Restrict(r.Context(), p, r.PathValue("id"), &req)
	s.subjectCall(w, r, subj, err)
}

func (s *Server) unrestrict(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	subj, err := s.v.Unrestrict(r.Context(), p, r.PathValue("id"))
	s.subjectCall(w, r, subj, err)
}

func (s *Server) objection(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	var req vault.ObjectionRequest
	if !s.decodeOptional(w, r, &req) {
		return
	}
	subj, err := s.v.UpholdObjection(r.Context(), p, r.PathValue("id"), &req)
	s.subjectCall(w, r, subj, err)
}

func (s *Server) addLegalHold(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	var req vault.LegalHoldRequest
	if !s.decode(w, r, &req) {
		return
	}
	subj, err := s.v.AddLegalHold(r.Context(), p, r.PathValue("id"), &req)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, subj)
}

func (s *Server) releaseLegalHold(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	subj, err := s.v.ReleaseLegalHold(r.Context(), p, r.PathValue("id"), r.PathValue("hold"))
	s.subjectCall(w, r, subj, err)
}

func (s *Server) retention(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	var req vault.RetentionRequest
	if !s.decode(w, r, &req) {
		return
	}
	subj, err := s.v.SetRetention(r.Context(), p, r.PathValue("id"), &req)
	s.subjectCall(w, r, subj, err)
}

func (s *Server) erase(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	var req vault.EraseRequest
	if !s.decode(w, r, &req) {
		return
	}
	cert, err := s.v.Erase(r.Context(), p, r.PathValue("id"), &req)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cert)
}

func (s *Server) erasures(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	certs, err := s.v.ErasureCertificates(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"erasures": certs})
}

func (s *Server) accessReport(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	rep, err := s.v.AccessReport(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) createEvidence(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	var req vault.CreateEvidenceRequest
	if !s.decode(w, r, &req) {
		return
	}
	e, err := s.v.CreateEvidence(r.Context(), p, &req)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, e)
}

func (s *Server) getEvidence(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	e, err := s.v.GetEvidence(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (s *Server) approveEvidence(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	e, err := s.v.ApproveEvidence(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (s *Server) revokeEvidence(w http.ResponseWriter, r *http.Request, p *vault.Principal) {
	e, err := s.v.RevokeEvidence(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}
