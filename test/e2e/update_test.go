package e2e

import (
	. "github.com/onsi/gomega"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// update reads obj, applies mutate and writes it, retrying on conflicts: the
// operator writes status (and so the resourceVersion) of the same objects.
func update(obj client.Object, mutate func()) {
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate()
		return k8sClient.Update(ctx, obj)
	})).To(Succeed())
}
