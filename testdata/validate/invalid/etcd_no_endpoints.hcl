# expect: 3:1
# A team store that names no etcd endpoints, with none in DROVER_ETCD_ENDPOINTS either.
store "etcd" {
  prefix = "drover/prod/"
}
