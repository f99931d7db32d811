# expect: 4:13
dns "digitalocean" "do" {
  zone    = "example.com"
  api_url = "https://drover:dop_v1_secret@api.digitalocean.com/"
}
