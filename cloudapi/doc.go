// Package cloudapi is the client side of the cloud's wire protocol (Tencent Cloud API 3.0:
// signed JSON POSTs). Every Stratus component reaches the cloud through a *Client, so
// signing, retries, client-side rate limits, idempotency tokens and call accounting live
// here and nowhere else. The typed operations and wire types of each service are in the
// sub-packages (cvm, vpc, clb, cbs); fakecloud imports those types to answer them.
//
// The package never imports Kubernetes and never logs credentials.
package cloudapi
