# The Pi role of TestE2EPiLab: the homelab example's pi role (built with the "rpi" builder), plus
# root's authorized_keys, which the test writes before the build with a key of its own, so that it
# can drive the emulated Pi over SSH.
drover {
  name = "pilab"
}

base "debian-bookworm" {
  suite  = "bookworm"
  mirror = "http://deb.debian.org/debian"
}

role "pi" {
  image {
    base     = "debian-bookworm"
    builder  = "rpi"
    packages = ["nginx-light"]
    files = {
      "/var/www/html/index.html"    = "pi/index.html"
      "/root/.ssh/authorized_keys" = "pi/authorized_keys"
    }
    run = ["systemctl enable nginx"]
  }
}
