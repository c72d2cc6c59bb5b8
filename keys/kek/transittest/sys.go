package transittest

import (
	"fmt"
	"net/http"
)

type healthData struct {
	Initialized                bool   `json:"initialized"`
	Sealed                     bool   `json:"sealed"`
	Standby                    bool   `json:"standby"`
	ReplicationPerformanceMode string `json:"replication_performance_mode"`
	ReplicationDRMode          string `json:"replication_dr_mode"`
	ServerTimeUTC              int64  `json:"server_time_utc"`
	Version                    string `json:"version"`
	ClusterName                string `json:"cluster_name,omitempty"`
	ClusterID                  string `json:"cluster_id,omitempty"`
}

// version is what sys/health reports.
const version = "2.6.2-transittest"

// health answers sys/health without a token: 200 when unsealed, 503 when
// sealed (Vault's defaults for sealedcode).
func (s *Server) health() reply {
	h := healthData{
		Initialized:                true,
		Sealed:                     s.sealed,
		Standby:                    s.sealed,
		ReplicationPerformanceMode: "disabled",
		ReplicationDRMode:          "disabled",
		ServerTimeUTC:              unixNow(),
		Version:                    version,
	}
	if s.sealed {
		h.ReplicationPerformanceMode, h.ReplicationDRMode = "unknown", "unknown"
		return reply{status: http.StatusServiceUnavailable, body: h}
	}
	h.ClusterName = "vault-cluster-" + s.clusterID[:8]
	h.ClusterID = s.clusterID
	return reply{status: http.StatusOK, body: h}
}

type mountData struct {
	Accessor    string         `json:"accessor"`
	Config      map[string]any `json:"config"`
	Description string         `json:"description"`
	Local       bool           `json:"local"`
	Options     any            `json:"options"`
	SealWrap    bool           `json:"seal_wrap"`
	Type        string         `json:"type"`
	UUID        string         `json:"uuid"`
}

// mountRoute serves sys/mounts/<path>: read, enable (transit only) and
// disable a secrets engine.
func (s *Server) mountRoute(path string) *route {
	if path == "" {
		return nil
	}
	return &route{
		read: func(*request) reply {
			e := s.mounts[path]
			if e == nil {
				return badRequest(fmt.Sprintf("No secret engine mount at %s/", path))
			}
			return okReply(mountData{
				Accessor:    "transit_" + e.id[:8],
				Config:      map[string]any{"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false},
				Description: e.description,
				Type:        "transit",
				UUID:        e.id,
			})
		},
		write: func(r *request) reply {
			typ, _, err := r.str("type")
			if err != nil {
				return fieldError("type", err)
			}
			desc, _, _ := r.str("description")
			if typ != "transit" {
				return badRequest(fmt.Sprintf("transittest: only transit mounts are supported, not %q", typ))
			}
			for m := range s.mounts {
				if m == path || len(m) > len(path) && m[:len(path)+1] == path+"/" || len(path) > len(m) && path[:len(m)+1] == m+"/" {
					return badRequest(fmt.Sprintf("path is already in use at %s/", m))
				}
			}
			e := newEngine(path)
			e.description = desc
			s.mounts[path] = e
			return noContent()
		},
		del: func(*request) reply {
			delete(s.mounts, path)
			return noContent()
		},
	}
}
