package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/hookd/hookd/sdk"
)

// The examples follow the Python examples of Codat's Webhooks SDK. Each one starts a
// hookd server on a loopback port with startExampleServer. Against your own server, pass
// its URL to sdk.WithServerURL and your key's header value, "Basic " followed by the
// base64 encoding of the API key, to sdk.WithSecurity.

func ExampleWebhooks_CreateConsumer() {
	hookd := startExampleServer()
	defer hookd.Close()

	s := sdk.New(
		sdk.WithServerURL(hookd.URL),
		sdk.WithSecurity(hookd.AuthHeader),
	)

	res, err := s.Webhooks.CreateConsumer(context.Background(), sdk.WebhookConsumerPrototype{
		EventTypes: []string{
			"DataSyncCompleted",
			"Dataset data changed",
		},
		URL: "https://example.com/webhook-consumer",
	})
	if err != nil {
		log.Fatal(err)
	}

	// Handle response
	fmt.Println(res.URL)
	fmt.Printf("%q\n", res.EventTypes)
	// Output:
	// https://example.com/webhook-consumer
	// ["DataSyncCompleted" "Dataset data changed"]
}

func ExampleWebhooks_DeleteConsumer() {
	hookd := startExampleServer()
	defer hookd.Close()

	s := sdk.New(
		sdk.WithServerURL(hookd.URL),
		sdk.WithSecurity(hookd.AuthHeader),
	)

	err := s.Webhooks.DeleteConsumer(context.Background(), sdk.DeleteWebhookConsumerRequest{
		WebhookID: "8a210b68-6988-11ed-a1eb-0242ac120002",
	})
	if err != nil {
		log.Fatal(err)
	}

	// Use the SDK ...
	fmt.Println("deleted")
	// Output: deleted
}

func ExampleWebhooks_ListConsumers() {
	hookd := startExampleServer()
	defer hookd.Close()

	s := sdk.New(
		sdk.WithServerURL(hookd.URL),
		sdk.WithSecurity(hookd.AuthHeader),
	)

	res, err := s.Webhooks.ListConsumers(context.Background())
	if err != nil {
		log.Fatal(err)
	}

	// Handle response
	for _, consumer := range res.Results {
		fmt.Println(consumer.ID, consumer.URL, consumer.EventTypes)
	}
	// Output: 8a210b68-6988-11ed-a1eb-0242ac120002 https://example.com/webhook-consumer [DataSyncCompleted]
}

// Errors that the server declares for an operation arrive as *sdk.ErrorMessage, with the
// fields of the response body. Here the URL is invalid and retries are turned off.
func ExampleErrorMessage() {
	hookd := startExampleServer()
	defer hookd.Close()

	s := sdk.New(
		sdk.WithServerURL(hookd.URL),
		sdk.WithSecurity(hookd.AuthHeader),
	)

	_, err := s.Webhooks.CreateConsumer(context.Background(), sdk.WebhookConsumerPrototype{
		EventTypes: []string{"company.created"},
		URL:        "ftp://example.com/webhook-consumer",
	}, sdk.WithRetries(sdk.RetryConfig{Strategy: sdk.StrategyNone}))

	var em *sdk.ErrorMessage
	if errors.As(err, &em) {
		fmt.Println(em.HTTPStatus, em.CanBeRetried)
		for _, item := range em.Validation.Errors {
			fmt.Println(item.ItemID, item.ValidatorName)
		}
	}
	// Output:
	// 400 False
	// url url
}
