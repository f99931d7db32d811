# The homelab fleet: a Vault server, a web server, PostgreSQL and an authoritative name server, all on
# the local lab (qemu VMs on this machine, a loopback failover IP, a local Knot for
# DNS cutover and a local Vault). `drover validate` checks it; `go tool task demo` rolls out "web".

drover {
  name = "homelab"
}

variable "domain" {
  type        = string
  default     = "lab.example"
  description = "the zone the lab's Knot serves"
}

variable "watch" {
  type        = string
  default     = "1m"
  description = "how long web's checks run through the failover address after a cutover (the demo sets 10s)"
}

variable "vault_binary" {
  type        = string
  default     = "../../bin/vault"
  description = "the vault server binary baked into the vault role"
}

variable "vault_operator_key" {
  type        = string
  default     = "vault/operator.gpg"
  description = "the operator's PGP public key (binary, as gpg --export writes it): the vault role's recovery key and root token are encrypted to it"
}

variable "zone" {
  type    = string
  default = "${var.domain}."
}

base "debian-bookworm" {
  suite  = "bookworm"
  mirror = "http://deb.debian.org/debian"
  arch   = "amd64"
}

compute "qemu" "lab" {
  # Each VM gets a second NIC on a segment the lab's VMs share, and an address on it (its loopback
  # address moved into this range): the vault role's raft nodes join and replicate over it.
  segment = "10.77.0.0/24"

  memory = 512
  cpus   = 1
  accel  = "auto"
}

ip "loopback" "front" {
  address = "127.0.0.100"
}

dns "rfc2136" "home" {
  server   = "127.0.0.1:5353"
  zone     = var.zone
  key_name = "drover"
}

vault {
  address = "http://127.0.0.1:8200"
}

store "local" {}

role "web" {
  image {
    base     = "debian-bookworm"
    packages = ["nginx"]
    files = {
      "/etc/nginx/sites-available/default" = "web/site.conf"
      "/var/www/html/index.html"           = "web/index.html"
    }
    run     = ["systemctl enable nginx"]
    # Secrets come from the vault block at boot, never from the image: every instance gets a
    # single-use, wrapped SecretID of its own at launch, and drover-boot writes each secret to
    # /run/drover/secrets (tmpfs) before the services below start. The demo starts no lab Vault, so
    # web has none here; TestE2ESecrets rolls web out with these on a real Vault:
    #
    #   secret "tls.key" {
    #     path  = "kv/data/web/tls"
    #     field = "key"
    #   }
    #   secret "htpasswd" {                # a template rendered with the path's fields
    #     path     = "kv/data/web/app"
    #     template = "web/htpasswd.tmpl"   # admin:{PLAIN}{{ .password }}
    #     owner    = "root:www-data"
    #     mode     = "0440"
    #   }
    #   services = ["nginx"]               # starts only once drover-boot wrote them
    #
    # TLS for www from Vault's PKI engine rather than a key kept in KV (web/README.md: the PKI mount
    # and role to make once, and the one path drover's policy for web grants): drover-boot issues
    # it at boot with the instance's own token, writes /run/drover/secrets/www.key and www.crt
    # (certificate, then the issuing CA) before nginx starts, renews it at two thirds of its ttl
    # and reloads nginx. TestE2ESecrets serves one from a real Vault's PKI on the lab.
    #
    #   certificate "www" {
    #     pki_role    = "web"
    #     common_name = "${role.dns_name}"   # www.lab.example: the cutover's name in its zone
    #     ip_sans     = [instance.address]   # the instance's own address, filled in at boot
    #     ttl         = "72h"
    #     reload      = ["nginx"]
    #   }
    #
    # A container runs the same way, baked in: the image is copied at build time from the registry,
    # pinned by digest (the identity covers it, so an unchanged role is not pulled again), and a unit
    # starts it at boot after drover-boot, never pulling: with podman, or with Docker (engine =
    # "docker": loaded into Docker's store at first boot from the baked one). A Compose stack runs
    # from a file of this repo, each of its images a container block (start = false: no unit of
    # its own) with the digest the Compose file pins. The demo's web serves nginx alone (the lab has
    # no registry to bake from; web/README.md says more); TestE2EContainerBaked builds and boots a
    # role with all three from a loopback registry:
    #
    #   container "stats" {
    #     image   = "registry.lab.example:5000/web/stats:1.2"
    #     digest  = "sha256:..."             # skopeo inspect --format '{{.Digest}}' docker://IMAGE
    #     command = ["-listen", "127.0.0.1:8080"]   # nginx proxies /stats to it
    #     volumes = ["/run/drover/secrets:/secrets:ro"]
    #   }
    #   container "redis" {
    #     image  = "registry.lab.example:5000/library/redis:7"
    #     digest = "sha256:..."              # the digest web/compose.yml names
    #     engine = "docker"
    #     start  = false                     # run by the stack below
    #   }
    #   compose "queue" {
    #     file = "web/compose.yml"           # image: registry.lab.example:5000/library/redis:7@sha256:...
    #   }
  }
  deploy {
    compute = "lab"
    count   = 2
    ports   = [80]
    health "http" {
      port   = 80
      path   = "/"
      expect = 200
    }
    # The failover address moves to green; www.lab.example in the lab's Knot points at it.
    cutover "ip" {
      ip   = "front"
      dns  = "home"
      name = "www"
      ttl  = 60
    }
    keep_old = "15m"
    watch    = var.watch
  }
}

# PostgreSQL keeps its data on the volume "pgdata", not in the image: a rollout hands the volume
# from blue to green (strategy handoff, the default for a role with a volume) instead of booting an
# empty database. See db/README.md for the handoff, its downtime and restoring a snapshot.
role "db" {
  image {
    base     = "debian-bookworm"
    packages = ["postgresql", "e2fsprogs"] # e2fsprogs: drover-boot makes and checks the volume's ext4
    file "/etc/postgresql/15/main/conf.d/drover.conf" {
      source = "db/drover.conf"
      mode   = "0644"
      owner  = "postgres:postgres"
    }
    # Makes the cluster on a blank volume at its first mount; a volume with data is left alone.
    file "/etc/systemd/system/drover-pg-init.service" {
      source = "db/drover-pg-init.service"
    }
    file "/usr/local/sbin/drover-pg-init" {
      source = "db/pg-init.sh"
      mode   = "0755"
    }
    secrets = ["kv/data/db/postgres"]
    # Started only once drover-boot has mounted the volume (and written the secret); not at all
    # without it.
    services = ["drover-pg-init", "postgresql@15-main"]
    run      = ["systemctl enable drover-pg-init"]
    disk {
      min_size = "3GiB"
    }
  }
  deploy {
    compute = "lab"
    count   = 1
    health "postgres" {
      port = 5432
    }
    cutover "dns" {
      dns  = "home"
      name = "db"
      ttl  = 30
    }
    volume "pgdata" {
      size  = "2GiB"
      mount = "/var/lib/postgresql"
      owner = "postgres:postgres"
      mode  = "0755"
      # snapshot_before = true (the default): a snapshot before every handoff.
    }
  }
}

role "dns" {
  image {
    base     = "debian-bookworm"
    packages = ["knot"]
    file "/etc/knot/knot.conf" {
      source = "dns/knot.conf"
    }
    file "/var/lib/knot/lab.example.zone" {
      source = "dns/lab.example.zone"
      owner  = "knot:knot"
    }
    run = ["systemctl enable knot"]
  }
  deploy {
    compute = "lab"
    count   = 1
    health "dns" {
      port  = 53
      query = "ns1.${var.zone}"
    }
    cutover "ip" {
      ip = "front"
    }
  }
}

role "vault" {
  image {
    base = "debian-bookworm"
    # A stock Vault server binary (HashiCorp's release, or the one go tool task vault builds here).
    # Outside the lab, Vault comes from HashiCorp's apt repository instead: a repository block with
    # its signing key kept here, never fetched at build time (vault/README.md, "Vault from
    # HashiCorp's apt repository"). The lab builds without reaching HashiCorp, so it is shown, not
    # used; TestE2EThirdPartyRepository builds a role from a repository of this layout it serves:
    #
    #   repository "hashicorp" {
    #     uri   = "https://apt.releases.hashicorp.com"
    #     suite = "bookworm"
    #     key   = "vault/hashicorp-archive-keyring.gpg"
    #   }
    #   packages = ["vault"]                 # instead of the file below
    file "/usr/local/bin/vault" {
      source  = var.vault_binary
      mode    = "0755"
      made_by = "go tool task vault"
    }
    file "/etc/vault.d/vault.hcl" {
      source = "vault/vault.hcl"
    }
    # What init hands out is encrypted to this key (see vault/vault-init.sh).
    file "/etc/vault.d/operator.gpg" {
      source  = var.vault_operator_key
      made_by = "gpg --export YOUR-KEY-ID > vault/operator.gpg"
    }
    file "/etc/systemd/system/vault.service" {
      source = "vault/vault.service"
    }
    file "/etc/systemd/system/vault-init.service" {
      source = "vault/vault-init.service"
    }
    file "/usr/local/sbin/vault-init" {
      source = "vault/vault-init.sh"
      mode   = "0755"
    }
    # The transit seal's token, from the lab's Vault at boot: a periodic token that may only
    # encrypt and decrypt with transit/keys/drover-vault-unseal (vault/README.md sets it up).
    secret "transit.env" {
      path     = "kv/data/vault/transit"
      template = "vault/transit.env.tmpl"
    }
    services = ["vault"]
    run = [
      "useradd --system --home-dir /var/lib/vault --shell /usr/sbin/nologin vault",
      "install -d -o vault -g vault -m 0750 /var/lib/vault /var/lib/vault/raft",
      "systemctl enable vault vault-init",
    ]
  }
  deploy {
    compute = "lab"
    # Strategy raft: the first deploy boots node 0, which initializes the cluster and unseals
    # through the transit seal, then the others, which join it; a new image replaces the nodes one
    # at a time (vault/README.md). The nodes reach each other's ports 8200 and 8201 on the lab's
    # segment (a cloud's private network elsewhere).
    count    = 3
    strategy = "raft"
    ports    = [8200]
    health "vault" {
      port = 8200
    }
    cutover "dns" {
      dns  = "home"
      name = "vault"
      ttl  = 60
    }
  }
}

# A Raspberry Pi (3, 4 or 5) at home: its image is an SD card with two slots, written once with
# `drover images write pi /dev/sdX` (README, "The Raspberry Pi's card"). After that, updates are
# written into the slot that does not run and tried once before they are committed: give the role
# the deploy block below and a device block naming your Pi (left as a comment here, since the demo
# has no Pi to reach; docs/device.md):
#
#   compute "device" "home" {
#     hosts     = ["pi.home.arpa"]
#     host_keys = { "pi.home.arpa" = "SHA256:..." } # ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the Pi
#   }
#
# and in role "pi":
#
#   deploy {
#     compute  = "home"
#     strategy = "ab"
#     health "http" {
#       port = 80
#     }
#   }
role "pi" {
  image {
    base     = "debian-bookworm"
    builder  = "rpi"
    packages = ["nginx-light"]
    files    = { "/var/www/html/index.html" = "pi/index.html" }
    run      = ["systemctl enable nginx"]
  }
}
