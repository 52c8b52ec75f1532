package controllers

import eventsv1 "k8s.io/api/events/v1"

// eventsList adds a lookup to an events.k8s.io list.
type eventsList struct{ eventsv1.EventList }

func (l *eventsList) reasonsFor(name string) []string {
	var out []string
	for _, e := range l.Items {
		if e.Regarding.Name == name {
			out = append(out, e.Reason)
		}
	}
	return out
}
