package aws

// VMDKStreamBytes is vmdkStreamBytes, for the benchmarks of package aws_test.
var VMDKStreamBytes = vmdkStreamBytes
