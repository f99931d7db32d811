// planted by drover's e2e test (cmd/drover/scan_e2e_test.go): a made-up value, not a credential
const mapsKey = "AIzaSyDroverPlantedFakeGoogleKey2468135";
