# expect: 4:15
# A team store whose endpoint lacks its scheme: etcd client URLs are http:// or https://.
store "etcd" {
  endpoints = ["etcd1.example:2379"]
  prefix    = "drover/prod/"
}
