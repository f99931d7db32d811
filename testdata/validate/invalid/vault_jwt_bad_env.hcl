# expect: 4:14
vault {
  jwt_role = "drover-ci"
  jwt_env  = "CI-TOKEN"
}
