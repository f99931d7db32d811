package vultrlab

// The metadata service an instance reaches at 169.254.169.254 (https://www.vultr.com/metadata/,
// as cloud-init's Vultr datasource reads it): GET /v1.json, the whole document, and GET
// /latest/user-data, the user data as given at create (404 when there is none). Vultr's main
// IPv4 comes by DHCP; the document's interfaces say the same address for images that configure
// it themselves.

import (
	"encoding/json"
	"net/http"
)

// Metadata is the metadata service of instance id, for a Hypervisor to serve at
// 169.254.169.254:80. It reads the instance at each request, so a deleted one answers 404.
func (c *Cloud) Metadata(id string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1.json", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		in, ok := c.instances[id]
		var doc map[string]any
		if ok {
			doc = map[string]any{
				"instanceid": in.ID, "instance-v2-id": in.ID, "hostname": in.Label,
				"region":      map[string]string{"regioncode": in.Region},
				"tags":        append([]string{}, in.Tags...),
				"public-keys": []string{},
				"interfaces": []map[string]any{{
					"network-type": "public", "mac": mac(in.ID),
					"ipv4": map[string]any{"address": in.MainIP.String(), "netmask": "255.255.255.0", "gateway": "169.254.0.1", "additional": []any{}},
				}},
			}
			if in.VPC != "" { // a VPC's interface is configured statically from here (cloud-init's way)
				doc["interfaces"] = append(doc["interfaces"].([]map[string]any), map[string]any{
					"network-type": "private", "mac": mac(in.ID + in.VPC), "network-v2-id": in.VPC,
					"ipv4": map[string]any{"address": in.VPCAddress.String(), "netmask": "255.255.240.0"},
				})
			}
		}
		c.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	})
	mux.HandleFunc("GET /latest/user-data", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		in, ok := c.instances[id]
		var data []byte
		if ok {
			data = append([]byte(nil), in.UserData...)
		}
		c.mu.Unlock()
		if !ok || len(data) == 0 {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(data)
	})
	return mux
}

// mac is a stable locally administered MAC address of an instance.
func mac(id string) string {
	b := []byte{0x56, 0x00, 0, 0, 0, 0}
	for i := 0; i < len(id); i++ {
		b[2+i%4] ^= id[i]
	}
	const hexd = "0123456789abcdef"
	out := make([]byte, 0, 17)
	for i, x := range b {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, hexd[x>>4], hexd[x&15])
	}
	return string(out)
}
