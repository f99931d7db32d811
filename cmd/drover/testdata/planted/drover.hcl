# A fleet whose one role plants a made-up secret of every kind the secret scan knows (images/scan) in
# its image: drover build must refuse it at the scan step, naming each file and rule.
# cmd/drover/scan_e2e_test.go builds it. Every value here is fake; none is a credential anywhere.
# The base block and packages are the homelab example's web role's, so the cached base tree is reused.

drover {
  name = "planted"
}

base "debian-bookworm" {
  suite  = "bookworm"
  mirror = "http://deb.debian.org/debian"
  arch   = "amd64"
}

compute "qemu" "lab" {
  memory = 512
  cpus   = 1
  accel  = "auto"
}

store "local" {}

role "planted" {
  image {
    base     = "debian-bookworm"
    packages = ["nginx"]
    files = {
      "/etc/ssl/private/server.key"             = "etc/ssl/private/server.key"
      "/etc/app/aws.env"                        = "etc/app/aws.env"
      "/etc/app/vault.env"                      = "etc/app/vault.env"
      "/opt/app/deploy.sh"                      = "opt/app/deploy.sh"
      "/opt/app/notify.py"                      = "opt/app/notify.py"
      "/root/.config/glab-cli/config.yml"       = "root/.config/glab-cli/config.yml"
      "/root/.npmrc"                            = "root/.npmrc"
      "/root/.pypirc"                           = "root/.pypirc"
      "/var/www/html/maps.js"                   = "var/www/html/maps.js"
      "/opt/shop/settings.py"                   = "opt/shop/settings.py"
      "/etc/app/mail.env"                       = "etc/app/mail.env"
      "/etc/letsencrypt/cloudflare.ini"         = "etc/letsencrypt/cloudflare.ini"
      "/root/.pgpass"                           = "root/.pgpass"
      "/root/.netrc"                            = "root/.netrc"
      "/etc/wpa_supplicant/wpa_supplicant.conf" = "etc/wpa_supplicant/wpa_supplicant.conf"
      "/etc/app/app.conf"                       = "etc/app/app.conf"
      "/etc/app/remote.conf"                    = "etc/app/remote.conf"
      "/usr/local/lib/app/settings.py"          = "usr/local/lib/app/settings.py"
    }
    # /etc/shadow is the base's: a user with a (made-up) password hash is added to it.
    run = ["useradd --no-create-home --shell /usr/sbin/nologin --password '$6$droverplanted$DroverPlantedFakeSha512CryptHashNotAHashOfAnything2468135797531AbCdEfGhIjKlMnOpQrStUv' planted"]
  }
}
