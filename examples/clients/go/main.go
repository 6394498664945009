// The streaming guide's Go client (gorilla/websocket), with the URL and filters taken from
// flags or the environment instead of hard-coded.
//
//	go mod tidy     # fetches gorilla/websocket and writes go.sum
//	go run . -url ws://localhost:8080/ws -asset-codes XLM
//	WS_URL=ws://localhost:8080/ws WS_ASSET_CODES=USDC,XLM go run .
//
// Same code as the guide ("Client Examples", Go): read the welcome, send the registration,
// then read messages. Events go to stdout, one JSON object per line; everything else to
// stderr. List filters are comma-separated; each flag defaults to its environment variable
// (WS_URL, WS_TYPES, WS_ACCOUNT_IDS, WS_ASSET_CODES, WS_MIN_AMOUNT), and with neither the
// guide's own filters apply (contract_event, USDC). Pass an empty value (-asset-codes="") to
// not filter on a field.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/gorilla/websocket"
)

type RegistrationMessage struct {
	Type    string        `json:"type"`
	Filters ClientFilters `json:"filters"`
}

type ClientFilters struct {
	Types      []string `json:"types"`
	AccountIDs []string `json:"account_ids"`
	AssetCodes []string `json:"asset_codes"`
	MinAmount  string   `json:"min_amount"`
}

// envOr returns the environment variable name, or fallback when it is not set.
func envOr(name, fallback string) string {
	if value, ok := os.LookupEnv(name); ok {
		return value
	}
	return fallback
}

// split turns "a, b,,c" into [a b c]; "" gives an empty (not nil) slice, sent as [].
func split(value string) []string {
	items := []string{}
	for _, item := range strings.Split(value, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

func main() {
	url := flag.String("url", envOr("WS_URL", "ws://localhost:8080/ws"), "server URL ($WS_URL)")
	types := flag.String("types", envOr("WS_TYPES", "contract_event"), "event types, comma-separated ($WS_TYPES)")
	accountIDs := flag.String("account-ids", envOr("WS_ACCOUNT_IDS", ""), "accounts, comma-separated ($WS_ACCOUNT_IDS)")
	assetCodes := flag.String("asset-codes", envOr("WS_ASSET_CODES", "USDC"), "asset codes, comma-separated ($WS_ASSET_CODES)")
	minAmount := flag.String("min-amount", envOr("WS_MIN_AMOUNT", ""), "minimum amount ($WS_MIN_AMOUNT)")
	flag.Parse()
	log.SetOutput(os.Stderr)

	// Connect to WebSocket
	c, _, err := websocket.DefaultDialer.Dial(*url, nil)
	if err != nil {
		log.Fatal("dial:", err)
	}
	defer c.Close()

	// Read welcome message
	_, message, err := c.ReadMessage()
	if err != nil {
		log.Fatal("read:", err)
	}
	fmt.Fprintf(os.Stderr, "Welcome: %s\n", message)

	// Send registration
	registration := RegistrationMessage{
		Type: "register",
		Filters: ClientFilters{
			Types:      split(*types),
			AccountIDs: split(*accountIDs),
			AssetCodes: split(*assetCodes),
			MinAmount:  strings.TrimSpace(*minAmount),
		},
	}

	regJSON, _ := json.Marshal(registration)
	err = c.WriteMessage(websocket.TextMessage, regJSON)
	if err != nil {
		log.Fatal("write:", err)
	}

	// Read messages
	for {
		_, message, err := c.ReadMessage()
		if err != nil {
			log.Println("read:", err)
			return
		}

		var data map[string]interface{}
		if err := json.Unmarshal(message, &data); err != nil {
			log.Println("not JSON:", err)
			continue
		}
		switch data["type"] {
		case "registered":
			filters, _ := json.Marshal(data["filters"])
			fmt.Fprintf(os.Stderr, "Registered with filters: %s\n", filters)
		case "error":
			fmt.Fprintf(os.Stderr, "Server error %v: %v\n", data["error"], data["message"])
		default:
			// Process your event here: one JSON line per event on stdout.
			fmt.Printf("%s\n", message)
		}
	}
}
