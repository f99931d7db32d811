# planted by drover's e2e test (cmd/drover/scan_e2e_test.go): a made-up value, not a credential
STRIPE_SECRET_KEY = 'sk_live_DroverPlantedFakeStripe2468135'
