# The Pi role of TestE2EPiAB: the homelab example's pi role (built with the "rpi" builder), plus
# root's authorized_keys, which the test writes before the build with a key of its own, so that
# drover (and the test) can drive the emulated Pi over SSH. The device's host key is added to
# host_keys by the test once the Pi made it at its first boot.
drover {
  name = "pilab"
}

base "debian-bookworm" {
  suite  = "bookworm"
  mirror = "http://deb.debian.org/debian"
}

# The emulated Pi, through its launcher's SSH forward on the test's own address.
compute "device" "home" {
  hosts = ["127.0.127.2:2222"]
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

  deploy {
    compute  = "home"
    strategy = "ab"
    # nginx, through the launcher's HTTP forward (port 80 in the guest). A trial that serves does
    # so about 5 s after SSH answers; a minute is enough on a loaded host, and image 3's failing
    # trial waits out no more than that.
    health "http" {
      port              = 8080
      path              = "/"
      expect            = 200
      interval          = "5s"
      timeout           = "5s"
      healthy_threshold = 2
      deadline          = "1m"
    }
    watch = "10s"
  }
}
