# planted by drover's e2e test (cmd/drover/scan_e2e_test.go): a made-up value, not a credential
import slack
client = slack.WebClient(token="xoxb-246813579024-2468135790246-DroverPlantedFakeSlackBot")
