package vultrlab

// Vultr's instance user-data: GET /v2/instances/{id}/user-data answers it base64-encoded, and
// PATCH /v2/instances/{id} changes it (user_data, base64), its label and its tags (a tags field
// that is null or absent leaves them; the lab changes nothing else an update may name).

import (
	"encoding/base64"
	"net/http"
	"slices"
)

func (c *Cloud) getUserData(r *http.Request) (int, any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in, s, b := c.lookup(r)
	if in == nil {
		return s, b
	}
	return http.StatusOK, map[string]any{"user_data": map[string]string{"data": base64.StdEncoding.EncodeToString(in.UserData)}}
}

func (c *Cloud) updateInstance(r *http.Request) (int, any) {
	var req struct {
		Label    string   `json:"label"`
		Tags     []string `json:"tags"`
		UserData string   `json:"user_data"`
	}
	if s, b, ok := decode(r, &req); !ok {
		return s, b
	}
	data, err := base64.StdEncoding.DecodeString(req.UserData)
	if err != nil {
		return errorf(http.StatusBadRequest, "Invalid user_data: not base64 (%v).", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	in, s, b := c.lookup(r)
	if in == nil {
		return s, b
	}
	if req.UserData != "" {
		in.UserData = data
	}
	if req.Label != "" {
		in.Label = req.Label
	}
	if req.Tags != nil {
		in.Tags = slices.Clone(req.Tags)
	}
	return http.StatusAccepted, map[string]any{"instance": in.read()}
}
