package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/fieldvault/fieldvault/vault"
)

// ListKeys lists the categories' key versions and the tokens each protects.
func (c *Client) ListKeys(ctx context.Context) (*vault.KeysView, error) {
	var out vault.KeysView
	if err := c.do(ctx, http.MethodGet, "/v1/keys", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RotateKeys adds a new primary version to a category.
func (c *Client) RotateKeys(ctx context.Context, category string) (*vault.CategoryKeysView, error) {
	var out vault.CategoryKeysView
	if err := c.do(ctx, http.MethodPost, "/v1/keys/"+url.PathEscape(category)+"/rotate", struct{}{}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ConfigureKeys sets a category's automatic rotation period.
func (c *Client) ConfigureKeys(ctx context.Context, category string, req *vault.KeyConfigRequest) (*vault.CategoryKeysView, error) {
	var out vault.CategoryKeysView
	if err := c.do(ctx, http.MethodPost, "/v1/keys/"+url.PathEscape(category)+"/config", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// KeyVersionAction disables, enables or destroys a version.
func (c *Client) KeyVersionAction(ctx context.Context, category string, version uint32, action string) (*vault.CategoryKeysView, error) {
	var out vault.CategoryKeysView
	path := fmt.Sprintf("/v1/keys/%s/versions/%d/%s", url.PathEscape(category), version, url.PathEscape(action))
	if err := c.do(ctx, http.MethodPost, path, struct{}{}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Rewrap starts a rewrap job.
func (c *Client) Rewrap(ctx context.Context, req *vault.RewrapRequest) (*vault.Job, error) {
	var out vault.Job
	if err := c.do(ctx, http.MethodPost, "/v1/keys/rewrap", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RotateKEK rotates the KEK and re-wraps the keysets.
func (c *Client) RotateKEK(ctx context.Context) (int, error) {
	var out struct {
		N int `json:"keysets_rewrapped"`
	}
	if err := c.do(ctx, http.MethodPost, "/v1/keys/kek/rotate", struct{}{}, &out); err != nil {
		return 0, err
	}
	return out.N, nil
}

// GetJob reads a job.
func (c *Client) GetJob(ctx context.Context, id string) (*vault.Job, error) {
	var out vault.Job
	if err := c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
